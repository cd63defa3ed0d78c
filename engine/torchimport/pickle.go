package torchimport

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"unicode"

	"github.com/qmulgpu/qmulgpu/internal/clip"
)

// The pickle virtual machine below runs only the opcodes torch.save emits
// (protocols 2 to 5) and resolves only the globals in allowedGlobals; any
// other global is refused when it is named, before anything could call it.
// Every length read from the input is checked against the bytes left before
// it is used, and nothing is allocated in proportion to a number the input
// states: the stack, memo and containers grow only by one entry per opcode
// read, so memory stays proportional to the input's size, and the values
// one pickle may build are capped (maxValues). Containers nest at most
// maxDepth deep, and a list or dict cannot change once it is inside another
// value, so no value is recursive and none nests deeper than the cap.

// global is a resolved module-level name.
type global struct{ module, name string }

func (g global) String() string { return g.module + "." + g.name }

// The globals a checkpoint may name, and what each builds.
const (
	globalOrderedDict = iota + 1
	globalRebuildTensor
	globalRebuildParameter
	globalStorage
)

// storageDTypes maps torch's typed storage classes to safetensors dtypes.
var storageDTypes = map[string]string{
	"FloatStorage":    "F32",
	"DoubleStorage":   "F64",
	"HalfStorage":     "F16",
	"BFloat16Storage": "BF16",
	"LongStorage":     "I64",
	"IntStorage":      "I32",
	"ShortStorage":    "I16",
	"CharStorage":     "I8",
	"ByteStorage":     "U8",
	"BoolStorage":     "BOOL",
}

// allowedGlobal says what a global builds, or 0 when it is not allowed.
func allowedGlobal(g global) int {
	switch g.module {
	case "collections":
		if g.name == "OrderedDict" {
			return globalOrderedDict
		}
	case "torch._utils":
		switch g.name {
		case "_rebuild_tensor_v2":
			return globalRebuildTensor
		case "_rebuild_parameter", "_rebuild_parameter_with_state":
			return globalRebuildParameter
		}
	case "torch":
		if _, ok := storageDTypes[g.name]; ok {
			return globalStorage
		}
	}
	return 0
}

// Limits on what one pickle may build.
const (
	// maxDepth bounds how deeply containers nest (a state_dict inside a
	// checkpoint dict, a tensor's arguments: about 5).
	maxDepth = 64
	// maxValues bounds the opcodes one pickle runs and the memo entries it
	// sets (each builds at most one value of about 100 bytes): a
	// state_dict needs about 20 a tensor.
	maxValues = 1 << 22
	// MaxDims bounds a tensor's dimensions (the models' have at most 4).
	MaxDims = 16
)

// pyTuple, pyList and pyDict are Python's containers, with how deeply they
// nest (1 for one holding no container). A dict keeps its items in
// insertion order (later duplicates are resolved by the reader). A list or
// dict is sealed once it is put inside another value; it cannot change
// after that.
type (
	pyTuple struct {
		items []any
		depth int
	}
	pyList struct {
		items  []any
		depth  int
		sealed bool
	}
	pyDict struct {
		keys, values []any
		depth        int
		sealed       bool
	}
	// pyBigInt is an integer too wide for int64, as little-endian two's
	// complement bytes.
	pyBigInt []byte
)

// emptyTuple is shared by every empty tuple.
var emptyTuple = &pyTuple{depth: 1}

// nest seals the lists and dicts among items, which are about to be put
// inside target (a new tuple: nil), and returns the depth target needs (at
// least want).
func nest(items []any, target any, want int) (int, error) {
	for _, v := range items {
		if target != nil && v == target {
			return 0, errSealed
		}
		d := 0
		switch x := v.(type) {
		case *pyTuple:
			d = x.depth
		case *pyList:
			x.sealed, d = true, x.depth
		case *pyDict:
			x.sealed, d = true, x.depth
		}
		want = max(want, d+1)
	}
	if want > maxDepth {
		return 0, fmt.Errorf("containers nested more than %d deep", maxDepth)
	}
	return want, nil
}

// storageRef is a persistent reference to a storage: its element type, the
// key that locates its bytes in the container, and its element count.
type storageRef struct {
	dtype string
	key   string
	numel int64
}

// tensorRef is a tensor view of a storage.
type tensorRef struct {
	storage *storageRef
	offset  int64
	size    []int64
	stride  []int64
}

// persistentLoader resolves a persistent id (torch's storage references).
type persistentLoader func(pid any) (any, error)

// unpickler runs one pickle from data[pos:].
type unpickler struct {
	data    []byte
	pos     int
	stack   []any
	marks   []int
	memo    map[uint64]any
	persist persistentLoader
	// values counts the opcodes run and memo entries set (maxValues).
	values int
}

// unpickle runs the pickle starting at data[pos] and returns its value and
// the position after its STOP opcode.
func unpickle(data []byte, pos int, persist persistentLoader) (any, int, error) {
	u := &unpickler{data: data, pos: pos, memo: map[uint64]any{}, persist: persist}
	v, err := u.run()
	if err != nil {
		return nil, 0, fmt.Errorf("pickle at byte %d: %w", u.pos, err)
	}
	return v, u.pos, nil
}

func (u *unpickler) take(n uint64) ([]byte, error) {
	if n > uint64(len(u.data)-u.pos) {
		return nil, fmt.Errorf("needs %d bytes, %d left", n, len(u.data)-u.pos)
	}
	b := u.data[u.pos : u.pos+int(n)]
	u.pos += int(n)
	return b, nil
}

func (u *unpickler) uint(n int) (uint64, error) {
	b, err := u.take(uint64(n))
	if err != nil {
		return 0, err
	}
	var v uint64
	for i := n - 1; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v, nil
}

// line reads up to and excluding the next newline (GLOBAL's operands).
func (u *unpickler) line() (string, error) {
	for i := u.pos; i < len(u.data); i++ {
		if u.data[i] == '\n' {
			s := string(u.data[u.pos:i])
			u.pos = i + 1
			return s, nil
		}
	}
	return "", fmt.Errorf("unterminated line")
}

func (u *unpickler) push(v any) { u.stack = append(u.stack, v) }

// count charges an opcode or a memo entry against maxValues.
func (u *unpickler) count() error {
	if u.values++; u.values > maxValues {
		return fmt.Errorf("more than %d values (a state_dict needs about 20 a tensor)", maxValues)
	}
	return nil
}

func (u *unpickler) pop() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, fmt.Errorf("stack underflow")
	}
	v := u.stack[n-1]
	u.stack = u.stack[:n-1]
	return v, nil
}

func (u *unpickler) top() (any, error) {
	n := len(u.stack)
	if n == 0 || (len(u.marks) > 0 && u.marks[len(u.marks)-1] == n) {
		return nil, fmt.Errorf("stack underflow")
	}
	return u.stack[n-1], nil
}

// popMark pops everything down to the last MARK.
func (u *unpickler) popMark() ([]any, error) {
	if len(u.marks) == 0 {
		return nil, fmt.Errorf("no MARK on the stack")
	}
	m := u.marks[len(u.marks)-1]
	u.marks = u.marks[:len(u.marks)-1]
	items := append([]any(nil), u.stack[m:]...)
	u.stack = u.stack[:m]
	return items, nil
}

func (u *unpickler) popN(n int) ([]any, error) {
	out := make([]any, n)
	for i := n - 1; i >= 0; i-- {
		v, err := u.pop()
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

// run executes opcodes until STOP.
func (u *unpickler) run() (any, error) {
	for {
		op, err := u.take(1)
		if err != nil {
			return nil, fmt.Errorf("no STOP opcode")
		}
		if op[0] == '.' { // STOP
			if len(u.marks) != 0 || len(u.stack) != 1 {
				return nil, fmt.Errorf("STOP with %d values and %d marks on the stack", len(u.stack), len(u.marks))
			}
			return u.stack[0], nil
		}
		if err := u.count(); err != nil {
			return nil, err
		}
		if err := u.step(op[0]); err != nil {
			return nil, err
		}
	}
}

// step executes one opcode.
func (u *unpickler) step(op byte) error {
	switch op {
	case 0x80, 0x95:
		return u.header(op)
	case '(', '0', '1', '2', 'N', 0x88, 0x89:
		return u.stackOp(op)
	case 'J', 'K', 'M', 0x8a, 0x8b, 'G':
		return u.number(op)
	case 'X', 0x8c, 0x8d, 'T', 'U', 'B', 'C', 0x8e:
		return u.text(op)
	case ')':
		u.push(emptyTuple)
	case 't', 0x85, 0x86, 0x87:
		return u.tuple(op)
	case ']':
		u.push(&pyList{depth: 1})
	case '}':
		u.push(&pyDict{depth: 1})
	case 'a', 'e', 's', 'u':
		return u.fill(op)
	case 'q', 'r', 0x94, 'h', 'j':
		return u.memoOp(op)
	case 'c', 0x93:
		return u.globalOp(op)
	case 'R', 0x81:
		return u.reduce()
	case 'b':
		return u.build()
	case 'Q':
		return u.persistentID()
	default:
		return fmt.Errorf("unsupported opcode 0x%02x", op)
	}
	return nil
}

// header executes PROTO and FRAME.
func (u *unpickler) header(op byte) error {
	if op == 0x80 { // PROTO
		v, err := u.uint(1)
		if err == nil && (v < 2 || v > 5) {
			err = fmt.Errorf("pickle protocol %d (torch.save writes 2 to 5)", v)
		}
		return err
	}
	// FRAME: an I/O hint; the frame's opcodes follow inline.
	n, err := u.uint(8)
	if err == nil && n > uint64(len(u.data)-u.pos) {
		err = fmt.Errorf("frame of %d bytes, %d left", n, len(u.data)-u.pos)
	}
	return err
}

// stackOp executes MARK, POP, POP_MARK, DUP and the constants None, True
// and False.
func (u *unpickler) stackOp(op byte) error {
	switch op {
	case '(': // MARK
		u.marks = append(u.marks, len(u.stack))
	case '0': // POP
		_, err := u.pop()
		return err
	case '1': // POP_MARK
		_, err := u.popMark()
		return err
	case '2': // DUP
		v, err := u.top()
		if err == nil {
			u.push(v)
		}
		return err
	case 'N':
		u.push(nil)
	case 0x88:
		u.push(true)
	case 0x89:
		u.push(false)
	}
	return nil
}

// globalOp executes GLOBAL (module and name as two lines) and
// STACK_GLOBAL (as two strings on the stack).
func (u *unpickler) globalOp(op byte) error {
	if op == 'c' {
		module, err := u.line()
		if err != nil {
			return err
		}
		name, err := u.line()
		if err != nil {
			return err
		}
		return u.global(module, name)
	}
	v, err := u.popN(2)
	if err != nil {
		return err
	}
	module, ok1 := v[0].(string)
	name, ok2 := v[1].(string)
	if !ok1 || !ok2 {
		return fmt.Errorf("STACK_GLOBAL of %s and %s, not two strings", describe(v[0]), describe(v[1]))
	}
	return u.global(module, name)
}

// persistentID executes BINPERSID: a storage of the checkpoint.
func (u *unpickler) persistentID() error {
	pid, err := u.pop()
	if err != nil {
		return err
	}
	if u.persist == nil {
		return fmt.Errorf("persistent id outside a checkpoint's object pickle")
	}
	v, err := u.persist(pid)
	if err != nil {
		return err
	}
	u.push(v)
	return nil
}

func (u *unpickler) number(op byte) error {
	switch op {
	case 'J': // BININT
		v, err := u.uint(4)
		u.push(int64(int32(uint32(v))))
		return err
	case 'K': // BININT1
		v, err := u.uint(1)
		u.push(int64(v))
		return err
	case 'M': // BININT2
		v, err := u.uint(2)
		u.push(int64(v))
		return err
	case 'G': // BINFLOAT, big-endian
		b, err := u.take(8)
		if err != nil {
			return err
		}
		u.push(math.Float64frombits(binary.BigEndian.Uint64(b)))
		return nil
	}
	width := 1 // LONG1
	if op == 0x8b {
		width = 4 // LONG4
	}
	n, err := u.uint(width)
	if err != nil {
		return err
	}
	b, err := u.take(n)
	if err != nil {
		return err
	}
	if len(b) > 8 {
		u.push(pyBigInt(b))
		return nil
	}
	var v int64
	for i := len(b) - 1; i >= 0; i-- {
		v = v<<8 | int64(b[i])
	}
	if len(b) > 0 && len(b) < 8 && b[len(b)-1]&0x80 != 0 {
		v -= 1 << (8 * len(b)) // sign-extend
	}
	u.push(v)
	return nil
}

// text reads the string and bytes opcodes.
func (u *unpickler) text(op byte) error {
	width := map[byte]int{'X': 4, 0x8c: 1, 0x8d: 8, 'T': 4, 'U': 1, 'B': 4, 'C': 1, 0x8e: 8}[op]
	n, err := u.uint(width)
	if err != nil {
		return err
	}
	b, err := u.take(n)
	if err != nil {
		return err
	}
	switch op {
	case 'B', 'C', 0x8e:
		u.push(append([]byte(nil), b...))
	default:
		u.push(string(b))
	}
	return nil
}

func (u *unpickler) tuple(op byte) error {
	var items []any
	var err error
	switch op {
	case 't':
		items, err = u.popMark()
	default:
		items, err = u.popN(int(op-0x85) + 1)
	}
	if err != nil {
		return err
	}
	if len(items) == 0 {
		u.push(emptyTuple)
		return nil
	}
	depth, err := nest(items, nil, 1)
	if err != nil {
		return err
	}
	u.push(&pyTuple{items: items, depth: depth})
	return nil
}

// fill runs APPEND, APPENDS, SETITEM and SETITEMS.
func (u *unpickler) fill(op byte) error {
	var items []any
	var err error
	switch op {
	case 'a':
		items, err = u.popN(1)
	case 's':
		items, err = u.popN(2)
	default:
		items, err = u.popMark()
	}
	if err != nil {
		return err
	}
	target, err := u.top()
	if err != nil {
		return err
	}
	switch t := target.(type) {
	case *pyList:
		if op != 'a' && op != 'e' {
			return fmt.Errorf("SETITEM on a list")
		}
		if t.sealed {
			return errSealed
		}
		if t.depth, err = nest(items, target, t.depth); err != nil {
			return err
		}
		t.items = append(t.items, items...)
	case *pyDict:
		if op != 's' && op != 'u' {
			return fmt.Errorf("APPEND on a dict")
		}
		if len(items)%2 != 0 {
			return fmt.Errorf("SETITEMS with an odd number of values")
		}
		if t.sealed {
			return errSealed
		}
		if t.depth, err = nest(items, target, t.depth); err != nil {
			return err
		}
		for i := 0; i < len(items); i += 2 {
			t.keys = append(t.keys, items[i])
			t.values = append(t.values, items[i+1])
		}
	default:
		return fmt.Errorf("adding items to %s", describe(target))
	}
	return nil
}

// errSealed refuses changing a list or dict already inside another value:
// torch.save fills each before it puts it anywhere, and only a recursive
// structure would need it.
var errSealed = fmt.Errorf("a list or dict changed after it was put inside another value (a recursive structure, which a checkpoint never holds)")

func (u *unpickler) memoOp(op byte) error {
	var idx uint64
	var err error
	switch op {
	case 'q', 'h':
		idx, err = u.uint(1)
	case 'r', 'j':
		idx, err = u.uint(4)
	case 0x94: // MEMOIZE
		idx = uint64(len(u.memo))
	}
	if err != nil {
		return err
	}
	if op == 'h' || op == 'j' {
		v, ok := u.memo[idx]
		if !ok {
			return fmt.Errorf("memo entry %d is not set", idx)
		}
		u.push(v)
		return nil
	}
	v, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := u.memo[idx]; !ok {
		if err := u.count(); err != nil {
			return err
		}
	}
	u.memo[idx] = v
	return nil
}

func (u *unpickler) global(module, name string) error {
	g := global{module, name}
	if allowedGlobal(g) == 0 {
		return &RefusedGlobalError{Global: g.String()}
	}
	u.push(g)
	return nil
}

// RefusedGlobalError reports a pickle naming a global outside the allowed
// set: importing never calls or builds anything but tensors and dicts.
type RefusedGlobalError struct{ Global string }

func (e *RefusedGlobalError) Error() string {
	return fmt.Sprintf("refused: the pickle names %s, but a checkpoint may only hold tensors, numbers, strings, lists and (ordered) dicts", displayName(e.Global))
}

// reduce runs REDUCE and NEWOBJ: a call of an allowed global.
func (u *unpickler) reduce() error {
	v, err := u.popN(2)
	if err != nil {
		return err
	}
	g, ok := v[0].(global)
	tuple, ok2 := v[1].(*pyTuple)
	if !ok || !ok2 {
		return fmt.Errorf("a call of %s with %s as arguments (want a global and a tuple)", describe(v[0]), describe(v[1]))
	}
	args := tuple.items
	var out any
	switch allowedGlobal(g) {
	case globalOrderedDict:
		if len(args) != 0 {
			return fmt.Errorf("%s with arguments", g)
		}
		out = &pyDict{depth: 1}
	case globalRebuildTensor:
		out, err = rebuildTensor(args)
	case globalRebuildParameter:
		if len(args) < 1 {
			return fmt.Errorf("%s without arguments", g)
		}
		t, ok := args[0].(*tensorRef)
		if !ok {
			return fmt.Errorf("%s of %s, not a tensor", g, describe(args[0]))
		}
		out = t
	default:
		return fmt.Errorf("%s is not callable", g)
	}
	if err != nil {
		return err
	}
	u.push(out)
	return nil
}

// build runs BUILD: setting an object's state. Only dicts take state (an
// OrderedDict's attributes, such as a state_dict's _metadata), and it is
// dropped.
func (u *unpickler) build() error {
	state, err := u.pop()
	if err != nil {
		return err
	}
	target, err := u.top()
	if err != nil {
		return err
	}
	if _, ok := target.(*pyDict); !ok {
		return fmt.Errorf("BUILD on %s (only a dict takes state)", describe(target))
	}
	if _, ok := state.(*pyDict); !ok && state != nil {
		return fmt.Errorf("BUILD with %s as state (want a dict)", describe(state))
	}
	return nil
}

// rebuildTensor checks the arguments of torch._utils._rebuild_tensor_v2:
// (storage, storage_offset, size, stride, requires_grad, backward_hooks[,
// metadata]).
func rebuildTensor(args []any) (*tensorRef, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor_v2 with %d arguments", len(args))
	}
	s, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor_v2 of %s, not a storage", describe(args[0]))
	}
	off, ok := args[1].(int64)
	if !ok || off < 0 {
		return nil, fmt.Errorf("_rebuild_tensor_v2: the storage offset is %s, not a non-negative integer", describe(args[1]))
	}
	size, err := int64s(args[2])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: the size %w", err)
	}
	stride, err := int64s(args[3])
	if err != nil {
		return nil, fmt.Errorf("_rebuild_tensor_v2: the stride %w", err)
	}
	if len(size) != len(stride) {
		return nil, fmt.Errorf("_rebuild_tensor_v2: %d sizes, %d strides", len(size), len(stride))
	}
	return &tensorRef{storage: s, offset: off, size: size, stride: stride}, nil
}

// int64s reads a tuple of at most MaxDims non-negative integers.
func int64s(v any) ([]int64, error) {
	t, ok := v.(*pyTuple)
	if !ok {
		return nil, fmt.Errorf("is %s, not a tuple", describe(v))
	}
	if len(t.items) > MaxDims {
		return nil, fmt.Errorf("has %d dimensions, more than the %d read", len(t.items), MaxDims)
	}
	out := make([]int64, len(t.items))
	for i, x := range t.items {
		n, ok := x.(int64)
		if !ok || n < 0 {
			return nil, fmt.Errorf("element %d is %s, not a non-negative integer", i, describe(x))
		}
		out[i] = n
	}
	return out, nil
}

// parseStorageID reads torch's persistent id of a storage: ('storage',
// storage_type, key, location, numel[, view_metadata]).
func parseStorageID(pid any) (*storageRef, error) {
	tuple, ok := pid.(*pyTuple)
	if !ok || len(tuple.items) < 5 || tuple.items[0] != "storage" {
		return nil, fmt.Errorf("persistent id %s is not a storage", describe(pid))
	}
	t := tuple.items
	g, ok := t[1].(global)
	if !ok || allowedGlobal(g) != globalStorage {
		return nil, fmt.Errorf("a storage of type %s (want one of torch's typed storages)", describe(t[1]))
	}
	key, ok := t[2].(string)
	if !ok {
		return nil, fmt.Errorf("a storage keyed by %s, not a string", describe(t[2]))
	}
	numel, ok := t[4].(int64)
	if !ok || numel < 0 {
		return nil, fmt.Errorf("storage %s has %s elements, not a non-negative integer", describe(key), describe(t[4]))
	}
	if len(t) > 5 && t[5] != nil {
		return nil, fmt.Errorf("storage %s is a view of another storage (not supported)", describe(key))
	}
	return &storageRef{dtype: storageDTypes[g.name], key: key, numel: numel}, nil
}

// describe names a value briefly, in Python's words, for error messages.
// It never looks inside a container, so it is short whatever the value.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return clip.Quote(x)
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return "the float " + strconv.FormatFloat(x, 'g', -1, 64)
	case pyBigInt:
		return fmt.Sprintf("a %d-byte integer", len(x))
	case []byte:
		return fmt.Sprintf("%d bytes", len(x))
	case global:
		return displayName(x.String())
	case *pyTuple:
		return fmt.Sprintf("a tuple of %d", len(x.items))
	case *pyList:
		return fmt.Sprintf("a list of %d", len(x.items))
	case *pyDict:
		return fmt.Sprintf("a dict of %d entries", len(x.keys))
	case *storageRef:
		return "a storage"
	case *tensorRef:
		return "a tensor"
	}
	return "an unknown value"
}

// displayName shows a dotted Python name as it is, and anything else
// quoted; either way in at most about 80 characters.
func displayName(s string) string {
	for _, c := range s {
		if c != '.' && c != '_' && !unicode.IsLetter(c) && !unicode.IsDigit(c) {
			return clip.QuoteN(s, 80)
		}
	}
	return clip.String(s, 80)
}
