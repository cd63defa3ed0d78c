//go:build cuda

package cuda

/*
#cgo LDFLAGS: -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>

// qm_dlopen and qm_dlsym copy dlerror's message (which is per thread and
// overwritten by the next dl call) into err within the same C call.
static void* qm_dlopen(const char* path, char* err, size_t errlen) {
	void* h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL)
		snprintf(err, errlen, "%s", dlerror());
	return h;
}

static void* qm_dlsym(void* h, const char* name, char* err, size_t errlen) {
	dlerror();
	void* p = dlsym(h, name);
	if (p == NULL) {
		const char* e = dlerror();
		snprintf(err, errlen, "%s", e != NULL ? e : "symbol is NULL");
	}
	return p;
}

static void qm_dlclose(void* h) { dlclose(h); }

// qm_dlpath is the file the loader opened for handle h.
static const char* qm_dlpath(void* h) {
	struct link_map* lm = NULL;
	if (dlinfo(h, RTLD_DI_LINKMAP, &lm) != 0 || lm == NULL)
		return NULL;
	return lm->l_name;
}

// qm_dlloaded returns a new handle of an already loaded library, or NULL.
static void* qm_dlloaded(const char* soname) { return dlopen(soname, RTLD_NOW | RTLD_NOLOAD); }
*/
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"unsafe"

	"github.com/qmulgpu/qmulgpu/cuda/libsearch"
	"github.com/qmulgpu/qmulgpu/engine/device"
)

// library is a shared library opened with dlopen, with the companion
// libraries it needs, opened first from its folder. One helper serves the
// CUDA driver, cuBLAS and cuDNN.
//
// Why companions: cuBLAS needs cuBLASLt of the same version, and cuDNN 9
// loads its sub-libraries (libcudnn_ops, _cnn, _engines_*, …) by bare
// name when it first needs them. Pip wheels and unpacked archives give
// them no search path the loader follows, so a library opened by full
// path from such a folder would not find them. The loader does match a
// library already loaded by its soname, so opening the companions from
// the same folder first, by full path, makes both the link-time
// dependencies and cuDNN's own dlopen calls find those files (PyTorch
// preloads its wheels' libraries the same way).
type library struct {
	name   string // what it is, e.g. "cuBLAS"
	path   string // the file opened
	where  string // where the search found it
	handle unsafe.Pointer
	// companions are the patterns of the libraries it needs beside it,
	// called partName; parts are those opened before it (for a file in
	// a folder).
	companions []string
	partName   string
	parts      []*library
}

// openLibrary opens c as the library called name. For a file in a folder
// it first opens the companions there, called partName: the files
// matching the patterns (globs relative to the folder), tried over and
// over until a round opens none, so that their order of dependency does
// not matter. A companion that does not open is left out; the library's
// own error then says what it missed.
func openLibrary(name string, c libsearch.Candidate, partName string, companions ...string) (*library, error) {
	l := &library{name: name, where: c.Where, companions: companions, partName: partName}
	if filepath.IsAbs(c.Path) && len(companions) > 0 {
		l.parts = openCompanions(partName, name, filepath.Dir(c.Path), companions)
	}
	h, err := dlopen(c.Path, name+" library")
	if err != nil {
		l.close()
		return nil, err
	}
	l.handle, l.path = h, loadedPath(h, c.Path)
	return l, nil
}

// openCompanions opens the files of dir matching patterns, in rounds, as
// parts called name of the library called owner.
func openCompanions(name, owner, dir string, patterns []string) []*library {
	var todo []string
	for _, p := range patterns {
		m, _ := filepath.Glob(filepath.Join(dir, p))
		todo = append(todo, m...)
	}
	slices.Sort(todo)
	todo = slices.Compact(todo)
	var parts []*library
	for progress := true; progress && len(todo) > 0; {
		progress = false
		var left []string
		for _, path := range todo {
			h, err := dlopen(path, "")
			if err != nil {
				left = append(left, path)
				continue
			}
			parts = append(parts, &library{name: name, path: path, where: "beside " + owner, handle: h})
			progress = true
		}
		todo = left
	}
	return parts
}

// close releases the library and its companions; l must not be used
// afterwards.
func (l *library) close() {
	if l.handle != nil {
		dlclose(l.handle)
		l.handle = nil
	}
	for i := len(l.parts) - 1; i >= 0; i-- {
		l.parts[i].close()
	}
	l.parts = nil
}

// resolve fills every symbol from the library.
func (l *library) resolve(syms []symbol) error { return resolve(l.handle, l.path, syms) }

// report describes the library and its companions for `qmulgpu devices`:
// those it opened beside it, or, for a library the loader found, those of
// its folder's names that are loaded now, wherever the loader took them
// from.
func (l *library) report(version, note string) []device.Library {
	out := []device.Library{{Name: l.name, Path: l.path, FoundIn: l.where, Version: version, Note: note}}
	for _, p := range l.parts {
		out = append(out, device.Library{Name: p.name, Path: p.path, FoundIn: "beside " + filepath.Base(l.path)})
	}
	if len(l.parts) > 0 {
		return out
	}
	for _, pattern := range l.companions {
		names, _ := filepath.Glob(filepath.Join(filepath.Dir(l.path), pattern))
		for _, n := range names {
			if p := pathOfLoaded(filepath.Base(n)); p != "" {
				out = append(out, device.Library{Name: l.partName, Path: p,
					FoundIn: "loader path (needed by " + filepath.Base(l.path) + ")"})
			}
		}
	}
	return out
}

// loaded is the process's record of the libraries in use, for
// `qmulgpu devices`, keyed by name so that a library chosen again
// replaces its entry.
var loaded struct {
	sync.Mutex
	names []string
	libs  map[string][]device.Library
}

// record notes the libraries in use under key.
func record(key string, libs []device.Library) {
	loaded.Lock()
	defer loaded.Unlock()
	if loaded.libs == nil {
		loaded.libs = map[string][]device.Library{}
	}
	if _, ok := loaded.libs[key]; !ok {
		loaded.names = append(loaded.names, key)
	}
	loaded.libs[key] = libs
}

// libraries lists the recorded libraries in the order first recorded.
func libraries() []device.Library {
	loaded.Lock()
	defer loaded.Unlock()
	var out []device.Library
	for _, k := range loaded.names {
		out = append(out, loaded.libs[k]...)
	}
	return out
}

// loadedPath is the full path of the file behind handle h (the loader's
// choice for a bare soname), or asked when the loader does not say.
func loadedPath(h unsafe.Pointer, asked string) string {
	if p := C.qm_dlpath(h); p != nil && C.GoString(p) != "" {
		return C.GoString(p)
	}
	return asked
}

// pathOfLoaded is the full path of a library the process has already
// loaded under soname (by another binding, such as go-nvml), or "".
func pathOfLoaded(soname string) string {
	cs := C.CString(soname)
	defer C.free(unsafe.Pointer(cs))
	h := C.qm_dlloaded(cs)
	if h == nil {
		return ""
	}
	defer C.qm_dlclose(h)
	return loadedPath(h, "")
}

// symbol is an entry point to resolve: the field that receives it and the
// names to try in order. An optional one may stay nil.
type symbol struct {
	dst      *unsafe.Pointer
	names    []string
	optional bool
}

// dlopen opens a shared library; what says what it is for the error.
func dlopen(path, what string) (unsafe.Pointer, error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var msg [512]C.char
	h := C.qm_dlopen(cpath, &msg[0], C.size_t(len(msg)))
	if h == nil {
		return nil, fmt.Errorf("cannot load the %s (%s): %s", what, path, C.GoString(&msg[0]))
	}
	return h, nil
}

// dlclose closes a library opened by dlopen.
func dlclose(lib unsafe.Pointer) { C.qm_dlclose(lib) }

// resolve fills every symbol from lib; path names the library in errors.
func resolve(lib unsafe.Pointer, path string, syms []symbol) error {
	var msg [512]C.char
	for _, s := range syms {
		for _, name := range s.names {
			cname := C.CString(name)
			p := C.qm_dlsym(lib, cname, &msg[0], C.size_t(len(msg)))
			C.free(unsafe.Pointer(cname))
			if p != nil {
				*s.dst = p
				break
			}
		}
		if *s.dst == nil && !s.optional {
			return fmt.Errorf("%s lacks %s: %s", path, s.names[0], C.GoString(&msg[0]))
		}
	}
	return nil
}

// isNotFound reports whether a dlopen error says that the file path
// itself does not exist (as opposed to a file that exists but does not
// load, or whose own dependency is missing).
func isNotFound(err error, path string) bool {
	return strings.Contains(err.Error(), path+": cannot open shared object file: No such file or directory")
}

// searchCandidates lists the files to try for sonames: exactly the file
// the override variable names when it is set, else libsearch's order.
func searchCandidates(override string, sonames []string) []libsearch.Candidate {
	if p := os.Getenv(override); p != "" {
		return []libsearch.Candidate{{Path: p, Where: "$" + override}}
	}
	return libsearch.Candidates(sonames, libsearch.Real().Places())
}

// firstUsable tries the candidates in order: open opens one (and may
// refuse a library the driver cannot run), try accepts it (creating a
// handle on the device, say; nil accepts every one), release undoes open
// when try refuses, and path is the file a library was opened from. It
// returns the first accepted and why each candidate found before it was
// passed over, with one phrase at the end for those that do not exist; ok
// is false when none was accepted. A file reached again (the loader's
// choice, then the same file in a system folder) is tried once.
func firstUsable[T any](cands []libsearch.Candidate, open func(libsearch.Candidate) (T, error), try func(T) error,
	release func(T), path func(T) string) (lib T, passed []string, ok bool) {
	var missing []string
	tried := map[string]bool{}
	for _, c := range cands {
		l, err := open(c)
		if err == nil {
			real, rerr := filepath.EvalSymlinks(path(l))
			if rerr == nil && tried[real] {
				release(l)
				continue
			}
			tried[real] = true
		}
		if err == nil && try != nil {
			if err = try(l); err != nil {
				release(l)
			}
		}
		switch {
		case err == nil:
			return l, passed, true
		case isNotFound(err, c.Path):
			missing = append(missing, c.Path)
		default:
			passed = append(passed, fmt.Sprintf("%s (%s): %v", c.Path, c.Where, err))
		}
	}
	if s := notFoundSummary(missing); s != "" {
		passed = append(passed, s)
	}
	var none T
	return none, passed, false
}

// choice is the process's pick of one library, made when the first device
// asks for a handle and kept, with the reason there was none, for the
// others.
type choice[L any] struct {
	mu  sync.Mutex
	lib L
	ok  bool
	err error
}

// use calls use on the chosen library (which creates a handle, say),
// choosing it first when no device has: pick tries the candidates, calling
// use on each one it opens, and returns the first that use accepted.
func (c *choice[L]) use(use func(L) error, pick func(try func(L) error) (L, error)) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.ok:
		return use(c.lib)
	case c.err != nil:
		return c.err
	}
	l, err := pick(use)
	if err != nil {
		c.err = err
		return err
	}
	c.lib, c.ok = l, true
	return nil
}

// choiceNote says why the chosen library was taken: the reasons others
// found before it were not.
func choiceNote(what string, passed []string) string {
	if len(passed) == 0 {
		return ""
	}
	return "the newest " + what + " found that works with the driver; passed over: " + strings.Join(passed, "; ")
}

// notFoundSummary sums up, in one phrase, the candidates that do not
// exist: "libcudnn.so.9, libcudnn.so.8 and 6 more places: not found".
func notFoundSummary(missing []string) string {
	switch {
	case len(missing) > 3:
		return fmt.Sprintf("%s and %d more places: not found", strings.Join(missing[:2], ", "), len(missing)-2)
	case len(missing) > 0:
		return strings.Join(missing, ", ") + ": not found"
	}
	return ""
}
