// Package pytorchtest finds the Python with PyTorch that the cross-framework
// tests compare against (Debian's python3-torch).
package pytorchtest

import (
	"os"
	"os/exec"
	"testing"
)

const missing = "PyTorch not installed (apt-get install python3-torch, or scripts/install-deps.sh test): cross-framework check skipped"

// Find returns the first Python that imports torch and numpy, trying
// Debian's /usr/bin/python3 before the one on PATH.
func Find() (string, bool) {
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if exec.Command(py, "-c", "import torch, numpy").Run() == nil {
			return py, true
		}
	}
	return "", false
}

// Python returns a Python with PyTorch, or skips the test.
func Python(t testing.TB) string {
	t.Helper()
	py, ok := Find()
	if !ok {
		t.Skip(missing)
	}
	return py
}

// Required is Python, except that under CI=true (the CI installs
// python3-torch) a missing PyTorch fails the test instead of skipping it.
func Required(t testing.TB) string {
	t.Helper()
	if _, ok := Find(); !ok && os.Getenv("CI") == "true" {
		t.Fatal(missing)
	}
	return Python(t)
}
