package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/qmulgpu/qmulgpu/bench/pytorchtest"
	"github.com/qmulgpu/qmulgpu/data"
	"github.com/qmulgpu/qmulgpu/engine/torchimport/torchtest"
)

// torchZipPickle packs a pickle as torch.save's zip format.
func torchZipPickle(t *testing.T, pkl []byte) []byte {
	var buf bytes.Buffer
	w := zip.NewWriter(&buf)
	f, err := w.CreateHeader(&zip.FileHeader{Name: "archive/data.pkl", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	f.Write(pkl)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestImportRefusesOtherGlobals: a checkpoint whose pickle names any global
// but the tensor and dict builders is refused with one line naming it, a
// non-zero status, nothing run and nothing written.
func TestImportRefusesOtherGlobals(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	marker := filepath.Join(dir, "pwned")
	cases := map[string][]byte{
		"os.system":     []byte("\x80\x02cos\nsystem\nX\x00\x00\x00\x00\x85R."),
		"builtins.eval": []byte("\x80\x04\x8c\x08builtins\x8c\x04eval\x93\x8c\x011\x85R."),
	}
	cases["os.system"] = bytes.Replace(cases["os.system"], []byte("X\x00\x00\x00\x00"),
		append([]byte{'X', byte(len("touch " + marker)), 0, 0, 0}, "touch "+marker...), 1)
	for global, pkl := range cases {
		for format, file := range map[string][]byte{"zip": torchZipPickle(t, pkl), "legacy": legacyPickle(pkl)} {
			src := filepath.Join(dir, format+".pth.tar")
			os.WriteFile(src, file, 0o644)
			out := filepath.Join(dir, "out")
			cmd := exec.Command(bin, "import", "--checkpoint", src, "--model", "smallcnn", "--dataset", "fashion-mnist", "--out", out)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			msg := strings.TrimRight(stderr.String(), "\n")
			if err == nil || strings.Count(msg, "\n") != 0 || !strings.Contains(msg, "refused") || !strings.Contains(msg, global) {
				t.Errorf("%s in %s: status %v, stderr %q; want a non-zero status and one line refusing %s", global, format, err, msg, global)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("%s in %s: %s was created", global, format, out)
			}
		}
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("the pickle ran a command")
	}
}

// legacyPickle puts a pickle where torch's legacy format has its object.
func legacyPickle(pkl []byte) []byte {
	b := []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")
	b = append(b, "\x80\x02M\xe9\x03."...)
	b = append(b, "\x80\x02}X\x0d\x00\x00\x00little_endian\x88s."...)
	return append(b, pkl...)
}

// TestImportThenUnlearn: a Fashion-MNIST smallcnn LSQ W4A4 saved by
// python3-torch as the reference code saves it imports, evaluates, and
// unlearns with --method qmul.
func TestImportThenUnlearn(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	py := pytorchtest.Python(t)
	if _, err := data.Locate("fashion-mnist", ""); err != nil {
		t.Skip("Fashion-MNIST not installed")
	}
	bin := buildCLI(t)
	dir := t.TempDir()
	spec, _ := json.Marshal([]map[string]any{{"arch": "smallcnn", "quant": []int{4, 4}, "c": 1, "h": 28, "w": 28, "classes": 10, "n": 8,
		"format": "zip", "wrap": "reference", "mean": []float64{0.2860}, "std": []float64{0.3530}, "out": dir}})
	os.WriteFile(filepath.Join(dir, "cases.json"), spec, 0o644)
	run := func(name string, args ...string) {
		t.Helper()
		if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	run(py, "../../bench/torch_save_checkpoint.py", filepath.Join(dir, "cases.json"))
	imported := filepath.Join(dir, "imported")
	run(bin, "import", "--checkpoint", filepath.Join(dir, "model.pth.tar"), "--model", "smallcnn", "--dataset", "fashion-mnist",
		"--quant", "lsq", "--wbits", "4", "--abits", "4", "--out", imported)
	ckpt := filepath.Join(imported, "model.safetensors")
	run(bin, "eval", "--checkpoint", ckpt, "--subset", "600", "--test-subset", "200")
	un := filepath.Join(dir, "unlearned")
	run(bin, "unlearn", "--checkpoint", ckpt, "--method", "qmul", "--forget", "random:50", "--subset", "600", "--test-subset", "200",
		"--epochs", "1", "--quiet", "--out", un)
	raw, err := os.ReadFile(filepath.Join(un, "metrics.json"))
	if err != nil {
		t.Fatal(err)
	}
	var res struct {
		Method, Quant string
	}
	if err := json.Unmarshal(raw, &res); err != nil || res.Method != "qmul" || res.Quant != "lsq W4A4" {
		t.Errorf("metrics.json: %+v %v", res, err)
	}
}

// importArgs import a torchtest.SmallCNN checkpoint.
var importArgs = []string{"--model", "smallcnn", "--dataset", "fashion-mnist", "--quant", "lsq", "--wbits", "4", "--abits", "4"}

// maxImportRSS is the peak resident memory allowed to refusing a crafted
// file: the runtime, the model and the Fashion-MNIST test split take about
// 40 MB.
const maxImportRSS = 100 << 20

// TestImportHostileFiles runs `qmulgpu import` on the crafted files of
// torchtest.Hostile (a stride-0 view of 2^40 elements, 4M nested tuples, a
// 400k-dimension shape under 2000 names, NaN and int8 weights, damaged
// legacy files, ...): each exits with status 1 and one line of at most
// about 300 characters (past the file's name) saying what is wrong, with a
// peak resident memory under 100 MB (the child's rusage), and leaves no
// --out behind. The good file they are made from imports, and its line
// says so without empty notes.
func TestImportHostileFiles(t *testing.T) {
	if _, err := data.Locate("fashion-mnist", ""); err != nil {
		t.Skip("Fashion-MNIST not installed")
	}
	bin := buildCLI(t)
	dir := t.TempDir()
	for _, h := range torchtest.Hostile() {
		t.Run(h.Name, func(t *testing.T) {
			src := filepath.Join(dir, "hostile.pth")
			if err := os.WriteFile(src, h.File, 0o644); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "out")
			cmd := exec.Command(bin, append([]string{"import", "--checkpoint", src, "--out", out}, importArgs...)...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			msg := strings.TrimSuffix(stderr.String(), "\n")
			if code := cmd.ProcessState.ExitCode(); code != 1 {
				t.Errorf("exit status %d (%v), want 1", code, err)
			}
			body := strings.TrimPrefix(msg, "qmulgpu: "+src+": ")
			if strings.Contains(msg, "\n") || len(body) > 300 || !strings.Contains(body, h.Want) {
				t.Errorf("stderr %.400q, want one line of at most 300 characters containing %q", msg, h.Want)
			}
			if rss := peakRSS(cmd); rss > maxImportRSS {
				t.Errorf("peak resident memory %d MB, want under %d MB", rss>>20, maxImportRSS>>20)
			}
			if _, err := os.Stat(out); err == nil {
				t.Errorf("--out %s was created", out)
			}
		})
	}
	src := filepath.Join(dir, "good.pth")
	if err := os.WriteFile(src, torchtest.ZipStateDict(torchtest.SmallCNNTensors()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "good")
	stdout, err := exec.Command(bin, append([]string{"import", "--checkpoint", src, "--out", out}, importArgs...)...).Output()
	want := fmt.Sprintf("%s (zip format, %d tensors) written to %s\n", src, len(torchtest.SmallCNNTensors()), filepath.Join(out, "model.safetensors"))
	if err != nil || string(stdout) != want {
		t.Errorf("good file: %v, stdout %q, want %q", err, stdout, want)
	}
	// A write that fails (a 50 kB file size limit: EFBIG) removes the
	// folders the import made for it.
	out = filepath.Join(dir, "new", "folders")
	cmd := exec.Command("sh", append([]string{"-c", `ulimit -f 100 && exec "$0" "$@"`, bin, "import", "--checkpoint", src, "--out", out}, importArgs...)...)
	msg, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(msg), "file too large") {
		t.Errorf("import under a 50 kB file size limit: %v, %s", err, msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "new")); err == nil {
		t.Errorf("the failed write left %s", filepath.Join(dir, "new"))
	}
}

// peakRSS is a finished command's peak resident memory in bytes.
func peakRSS(cmd *exec.Cmd) int64 {
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		return 0
	}
	return ru.Maxrss << 10 // kilobytes on Linux
}
