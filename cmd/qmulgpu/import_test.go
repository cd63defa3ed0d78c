package main

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/qmulgpu/qmulgpu/bench/pytorchtest"
	"github.com/qmulgpu/qmulgpu/data"
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
