package libsearch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// layout makes the files (relative to root) and returns root.
func layout(t *testing.T, files ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, f := range files {
		p := filepath.Join(root, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestCandidatesOrder(t *testing.T) {
	root := layout(t,
		"cudahome/lib64/libcublas.so.12",
		"usr/local/cuda/lib64/libcublas.so.12",
		"usr/local/cuda-12.4/lib64/libcublas.so.12",
		"usr/local/cuda-12.10/lib64/libcublas.so.12",
		"usr/local/cuda-11.8/lib64/libcublas.so.11",
		"usr/lib/x86_64-linux-gnu/libcublas.so.11",
		"venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
		"venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9",
		"conda/lib/libcublas.so.12",
		"usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.12",
		"pyuser/site-packages/nvidia/cublas/lib/libcublas.so.11",
	)
	env := map[string]string{
		"CUDA_HOME":    root + "/cudahome",
		"VIRTUAL_ENV":  root + "/venv",
		"CONDA_PREFIX": root + "/conda",
	}
	s := System{Getenv: func(k string) string { return env[k] }, Root: root,
		PythonSites: func() []string { return []string{root + "/pyuser/site-packages", root + "/python311.zip", ""} }}
	got := Candidates([]string{"libcublas.so.13", "libcublas.so.12", "libcublas.so.11"}, s.Places())
	var lines []string
	for _, c := range got {
		lines = append(lines, strings.ReplaceAll(c.Path, root, "")+" | "+strings.ReplaceAll(c.Where, root, ""))
	}
	want := []string{
		"libcublas.so.13 | loader path",
		"/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13 | pip wheel nvidia/cu13 in /venv/lib/python3.12/site-packages ($VIRTUAL_ENV)",
		"libcublas.so.12 | loader path",
		"/cudahome/lib64/libcublas.so.12 | $CUDA_HOME",
		"/usr/local/cuda/lib64/libcublas.so.12 | /usr/local/cuda*",
		"/usr/local/cuda-12.10/lib64/libcublas.so.12 | /usr/local/cuda*",
		"/usr/local/cuda-12.4/lib64/libcublas.so.12 | /usr/local/cuda*",
		"/conda/lib/libcublas.so.12 | $CONDA_PREFIX",
		"/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.12 | pip wheel nvidia/cublas in /usr/local/lib/python3.11/dist-packages (/usr/local/lib/python3*)",
		"libcublas.so.11 | loader path",
		"/usr/local/cuda-11.8/lib64/libcublas.so.11 | /usr/local/cuda*",
		"/usr/lib/x86_64-linux-gnu/libcublas.so.11 | system library folder",
		"/pyuser/site-packages/nvidia/cublas/lib/libcublas.so.11 | pip wheel nvidia/cublas in /pyuser/site-packages (python3)",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("candidates:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

// TestPlacesOnce: a site folder reached twice (python3 names the venv's)
// and a folder that does not exist are listed once and not at all.
func TestPlacesOnce(t *testing.T) {
	root := layout(t, "venv/lib/python3.12/site-packages/nvidia/cudnn/lib/libcudnn.so.9")
	site := root + "/venv/lib/python3.12/site-packages"
	env := map[string]string{"VIRTUAL_ENV": root + "/venv", "CUDA_PATH": root + "/nonexistent"}
	s := System{Getenv: func(k string) string { return env[k] }, Root: root,
		PythonSites: func() []string { return []string{site} }}
	var wheels []string
	for _, p := range s.Places() {
		if strings.Contains(p.Dir, "nonexistent") {
			t.Errorf("place %v does not exist", p)
		}
		if strings.HasPrefix(p.Where, "pip wheel") {
			wheels = append(wheels, p.Where)
		}
	}
	want := "pip wheel nvidia/cudnn in " + site + " (python3)"
	if len(wheels) != 1 || wheels[0] != want {
		t.Errorf("wheel places %q, want [%q]", wheels, want)
	}
}

func TestMajor(t *testing.T) {
	for _, tc := range []struct {
		path string
		want int
	}{
		{"libcublas.so.13", 13}, {"/a/b/libcudnn.so.9.1.0", 9}, {"libcublas.so", 0}, {"/x/libfoo.so.x", 0}, {"libcublasLt.so.12", 12},
	} {
		if got := Major(tc.path); got != tc.want {
			t.Errorf("Major(%q) = %d, want %d", tc.path, got, tc.want)
		}
	}
}

// TestPythonSitesOfThisMachine: when python3 exists its answer is a list
// of folders (on a machine without python3, nil).
func TestPythonSitesOfThisMachine(t *testing.T) {
	for _, p := range pythonSites() {
		if strings.Contains(p, "\n") {
			t.Errorf("site folder %q holds a newline", p)
		}
	}
}
