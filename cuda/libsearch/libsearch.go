// Package libsearch lists, in search order, the files where the CUDA
// libraries a GPU machine ships (cuBLAS, cuDNN) may be: the dynamic
// loader's own path, the CUDA toolkit's folders, the distributions'
// library folders, and the lib folders of NVIDIA's pip wheels in every
// Python site-packages or dist-packages folder that can be found. It
// only lists and checks that files exist; the cuda package opens them.
package libsearch

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Place is a folder to look in, and how the search came to it.
type Place struct {
	// Dir is the folder; "" stands for the dynamic loader's own search
	// (LD_LIBRARY_PATH, the ld.so cache, the system folders), where a
	// library is opened by its bare soname.
	Dir string
	// Where says how the folder was found, for `qmulgpu devices`:
	// "loader path", "$CUDA_HOME", "/usr/local/cuda*", "pip wheel
	// nvidia/cu13 in /venv/lib/python3.12/site-packages ($VIRTUAL_ENV)".
	Where string
}

// Candidate is a file to try.
type Candidate struct {
	// Path is the full path, or the bare soname for the loader path.
	Path string
	// Where is the Place's Where.
	Where string
}

// System is what the search reads. Real returns this machine's; tests
// substitute their own.
type System struct {
	// Getenv reads an environment variable.
	Getenv func(string) string
	// Root prefixes the fixed folders (/usr/local/cuda*, /usr/lib/…):
	// "" on a real machine.
	Root string
	// PythonSites lists python3's own site folders; nil or an empty
	// result when there is no python3.
	PythonSites func() []string
}

// Real is the search on this machine.
func Real() System {
	return System{Getenv: os.Getenv, PythonSites: pythonSites}
}

// pythonTimeout bounds the python3 query: a broken interpreter must not
// hold up opening a GPU.
const pythonTimeout = 5 * time.Second

// pythonSites asks python3, when there is one, for its site folders (its
// sys.path, site-packages and user site-packages).
func pythonSites() []string {
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), pythonTimeout)
	defer cancel()
	const script = "import site, sys\n" +
		"for p in sys.path + site.getsitepackages() + [site.getusersitepackages()]: print(p)\n"
	out, err := exec.CommandContext(ctx, py, "-c", script).Output()
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}

// Places lists the folders to search, in order: the loader path; the
// CUDA toolkit's lib64 under $CUDA_HOME, $CUDA_PATH and /usr/local/cuda*
// (newest version first); the distributions' library folders;
// $CONDA_PREFIX/lib; then every nvidia/*/lib folder (one per NVIDIA pip
// wheel) of every Python site folder found: python3's own, $VIRTUAL_ENV's,
// $CONDA_PREFIX's, and those under /usr/local/lib/python3* and
// /usr/lib/python3*. Folders that do not exist are left out; each appears
// once.
func (s System) Places() []Place {
	places := []Place{{Dir: "", Where: "loader path"}}
	for _, env := range []string{"CUDA_HOME", "CUDA_PATH"} {
		if v := s.Getenv(env); v != "" {
			places = append(places, Place{filepath.Join(v, "lib64"), "$" + env})
		}
	}
	for _, d := range s.cudaToolkits() {
		places = append(places, Place{filepath.Join(d, "lib64"), "/usr/local/cuda*"})
	}
	for _, d := range []string{"/usr/lib/" + multiarch(), "/usr/lib64"} {
		places = append(places, Place{s.Root + d, "system library folder"})
	}
	if v := s.Getenv("CONDA_PREFIX"); v != "" {
		places = append(places, Place{filepath.Join(v, "lib"), "$CONDA_PREFIX"})
	}
	for _, site := range s.sites() {
		wheels, _ := filepath.Glob(filepath.Join(site.Dir, "nvidia", "*", "lib"))
		slices.Sort(wheels)
		for _, w := range wheels {
			wheel := filepath.Base(filepath.Dir(w))
			places = append(places, Place{w, "pip wheel nvidia/" + wheel + " in " + site.Dir + " (" + site.Where + ")"})
		}
	}
	return existing(places)
}

// cudaToolkits lists /usr/local/cuda and then /usr/local/cuda-X.Y,
// newest version first.
func (s System) cudaToolkits() []string {
	dirs := []string{s.Root + "/usr/local/cuda"}
	versioned, _ := filepath.Glob(s.Root + "/usr/local/cuda-*")
	slices.SortFunc(versioned, func(a, b string) int {
		return compareVersions(strings.TrimPrefix(filepath.Base(b), "cuda-"), strings.TrimPrefix(filepath.Base(a), "cuda-"))
	})
	return append(dirs, versioned...)
}

// sites lists the Python site folders, as Places of their own: python3's,
// then $VIRTUAL_ENV's and $CONDA_PREFIX's, then the standard prefixes'.
func (s System) sites() []Place {
	var out []Place
	if s.PythonSites != nil {
		for _, p := range s.PythonSites() {
			if isSiteDir(p) {
				out = append(out, Place{p, "python3"})
			}
		}
	}
	for _, env := range []string{"VIRTUAL_ENV", "CONDA_PREFIX"} {
		if v := s.Getenv(env); v != "" {
			out = append(out, globPlaces(filepath.Join(v, "lib", "python3*", "site-packages"), "$"+env)...)
		}
	}
	for _, prefix := range []string{"/usr/local/lib", "/usr/lib"} {
		for _, kind := range []string{"dist-packages", "site-packages"} {
			out = append(out, globPlaces(filepath.Join(s.Root+prefix, "python3*", kind), prefix+"/python3*")...)
		}
	}
	return existing(out)
}

// isSiteDir reports whether p is a site-packages or dist-packages folder.
func isSiteDir(p string) bool {
	b := filepath.Base(p)
	return b == "site-packages" || b == "dist-packages"
}

// globPlaces is a Place for each folder pattern matches, in sorted order.
func globPlaces(pattern, where string) []Place {
	dirs, _ := filepath.Glob(pattern)
	slices.Sort(dirs)
	out := make([]Place, len(dirs))
	for i, d := range dirs {
		out[i] = Place{d, where}
	}
	return out
}

// existing keeps the loader path and the folders that exist, each folder
// once (the same folder reached through links counts once).
func existing(places []Place) []Place {
	seen := map[string]bool{}
	var out []Place
	for _, p := range places {
		if p.Dir == "" {
			out = append(out, p)
			continue
		}
		real, err := filepath.EvalSymlinks(p.Dir)
		if err != nil || seen[real] {
			continue
		}
		if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
			continue
		}
		seen[real] = true
		out = append(out, p)
	}
	return out
}

// Candidates lists the files to try for the given sonames, best first:
// for each soname in turn, the loader path and then each place's file of
// that name that exists.
func Candidates(sonames []string, places []Place) []Candidate {
	var out []Candidate
	for _, so := range sonames {
		for _, p := range places {
			if p.Dir == "" {
				out = append(out, Candidate{so, p.Where})
				continue
			}
			path := filepath.Join(p.Dir, so)
			if _, err := os.Stat(path); err == nil {
				out = append(out, Candidate{path, p.Where})
			}
		}
	}
	return out
}

// Major is the major version a versioned soname carries
// ("libcublas.so.13" → 13, "libcudnn.so.9.1.0" → 9), 0 when it has none.
func Major(path string) int {
	_, ver, ok := strings.Cut(filepath.Base(path), ".so.")
	if !ok {
		return 0
	}
	major, _, _ := strings.Cut(ver, ".")
	n, err := strconv.Atoi(major)
	if err != nil {
		return 0
	}
	return n
}

// compareVersions compares dotted versions ("12.4" < "12.10" < "13.0");
// a part that is not a number compares as 0.
func compareVersions(a, b string) int {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(pa), len(pb)) {
		var x, y int
		if i < len(pa) {
			x, _ = strconv.Atoi(pa[i])
		}
		if i < len(pb) {
			y, _ = strconv.Atoi(pb[i])
		}
		if x != y {
			return x - y
		}
	}
	return 0
}

// multiarch is Debian's name for this machine's library folder.
func multiarch() string {
	if runtime.GOARCH == "arm64" {
		return "aarch64-linux-gnu"
	}
	return "x86_64-linux-gnu"
}
