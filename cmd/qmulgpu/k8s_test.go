package main

// The Kubernetes manifests of deploy/k8s, decoded strictly into the
// Kubernetes API types and checked against this CLI: each pod of the
// indexed sweep Job must run its own shard, and the report Job must read
// the directory the sweep Job writes.

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"
)

const manifestDir = "../../deploy/k8s"

// manifests are the objects of deploy/k8s/*.yaml, by kind.
type manifests struct {
	jobs []*batchv1.Job
	pvcs map[string]*corev1.PersistentVolumeClaim
	pods []*corev1.Pod
}

var documentSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

// decodeManifests decodes every YAML document of every file strictly:
// unknown or duplicated fields and values of the wrong type are errors,
// as are kinds other than the ones the manifests are meant to hold.
func decodeManifests(files map[string][]byte) (*manifests, error) {
	m := &manifests{pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for name, text := range files {
		for i, doc := range documentSeparator.Split(string(text), -1) {
			if err := m.decode([]byte(doc)); err != nil {
				return nil, fmt.Errorf("%s, document %d: %w", name, i+1, err)
			}
		}
	}
	return m, nil
}

func (m *manifests) decode(doc []byte) error {
	if j, err := yaml.YAMLToJSON(doc); err != nil {
		return err
	} else if string(j) == "null" {
		return nil // comments only
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	switch tm.APIVersion + " " + tm.Kind {
	case "batch/v1 Job":
		j := new(batchv1.Job)
		m.jobs = append(m.jobs, j)
		return yaml.UnmarshalStrict(doc, j)
	case "v1 PersistentVolumeClaim":
		c := new(corev1.PersistentVolumeClaim)
		if err := yaml.UnmarshalStrict(doc, c); err != nil {
			return err
		}
		m.pvcs[c.Name] = c
		return nil
	case "v1 Pod":
		p := new(corev1.Pod)
		m.pods = append(m.pods, p)
		return yaml.UnmarshalStrict(doc, p)
	}
	return fmt.Errorf("apiVersion %q kind %q: not a kind these manifests hold", tm.APIVersion, tm.Kind)
}

// cliRun is what the CLI makes of a container's command line.
type cliRun struct {
	command       string // sweep or report
	shard, shards int
	out, config   string // sweep
	threads       int    // sweep
	dir           string // report
}

// parseCommand parses a container's command line with the real sweep and
// report flags, and resolves the sweep's shard with the real code, in the
// environment env (and no other shard variables).
func parseCommand(t *testing.T, c corev1.Container, env map[string]string) (cliRun, error) {
	argv := append(append([]string{}, c.Command...), c.Args...)
	if len(c.Command) != 0 && (len(c.Command) != 1 || c.Command[0] != "qmulgpu") {
		return cliRun{}, fmt.Errorf("container %s: command %q, want [qmulgpu] (or none: the image's entrypoint)", c.Name, c.Command)
	}
	if len(c.Command) == 0 {
		argv = append([]string{"qmulgpu"}, argv...)
	}
	for _, k := range []string{"JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "QMUL_CONV"} {
		t.Setenv(k, "") // restored after the test
		os.Unsetenv(k)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var run cliRun
	sweepCmd, reportCmd := sweepCommand(), reportCommand()
	sweepCmd.Action = func(c *cli.Context) (err error) {
		run = cliRun{command: "sweep", out: c.String("out"), config: c.String("config"), threads: c.Int("threads")}
		run.shard, run.shards, err = sweepShard(c)
		return err
	}
	reportCmd.Action = func(c *cli.Context) error {
		if c.NArg() != 1 {
			return fmt.Errorf("report takes one argument, got %q", c.Args().Slice())
		}
		run = cliRun{command: "report", dir: c.Args().First()}
		return nil
	}
	app := &cli.App{Name: "qmulgpu", Commands: []*cli.Command{sweepCmd, reportCmd},
		Writer: io.Discard, ErrWriter: io.Discard, ExitErrHandler: func(*cli.Context, error) {}}
	if err := app.Run(argv); err != nil {
		return cliRun{}, fmt.Errorf("container %s: %q: %w", c.Name, argv, err)
	}
	if run.command == "" {
		return cliRun{}, fmt.Errorf("container %s: %q runs neither sweep nor report", c.Name, argv)
	}
	return run, nil
}

// podEnv is the environment of the container in pod index of an indexed
// Job: JOB_COMPLETION_INDEX, which the Job controller sets, and the
// container's own variables.
func podEnv(c corev1.Container, index int) (map[string]string, error) {
	env := map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(index)}
	annotation := fmt.Sprintf("metadata.annotations['%s']", batchv1.JobCompletionIndexAnnotation)
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == annotation:
			env[e.Name] = strconv.Itoa(index)
		default:
			return nil, fmt.Errorf("container %s: variable %s comes from a source this test cannot evaluate", c.Name, e.Name)
		}
	}
	return env, nil
}

// location is where a path of a container lies: a volume's source (a
// claim or a ConfigMap) and the path inside it.
type location struct{ source, path string }

// locate finds the volume that holds file p in container c of spec.
func locate(spec corev1.PodSpec, c corev1.Container, p string) (location, corev1.VolumeMount, error) {
	var mount *corev1.VolumeMount
	for i, m := range c.VolumeMounts {
		if (p == m.MountPath || strings.HasPrefix(p, strings.TrimSuffix(m.MountPath, "/")+"/")) &&
			(mount == nil || len(m.MountPath) > len(mount.MountPath)) {
			mount = &c.VolumeMounts[i]
		}
	}
	if !path.IsAbs(p) || mount == nil {
		return location{}, corev1.VolumeMount{}, fmt.Errorf("container %s: %s is not on a volume, so it is lost with the pod", c.Name, p)
	}
	inner := path.Join("/", mount.SubPath, strings.TrimPrefix(p, mount.MountPath))
	for _, v := range spec.Volumes {
		switch {
		case v.Name != mount.Name:
		case v.PersistentVolumeClaim != nil:
			return location{"claim " + v.PersistentVolumeClaim.ClaimName, inner}, *mount, nil
		case v.ConfigMap != nil:
			return location{"configmap " + v.ConfigMap.Name, inner}, *mount, nil
		default:
			return location{}, *mount, fmt.Errorf("container %s: volume %s is neither a claim nor a ConfigMap", c.Name, v.Name)
		}
	}
	return location{}, *mount, fmt.Errorf("container %s: mount %s names no volume of the pod", c.Name, mount.Name)
}

// checkSweepJob checks the indexed sweep Job: pod i of N runs shard i of
// N, reads its sweep file from the ConfigMap, uses as many threads as it
// requests CPUs, and writes to a claim that every pod can mount. It
// returns where the results go.
func checkSweepJob(t *testing.T, m *manifests, j *batchv1.Job) (location, error) {
	s := j.Spec
	if s.CompletionMode == nil || *s.CompletionMode != batchv1.IndexedCompletion {
		return location{}, fmt.Errorf("job %s: completionMode must be Indexed, so that each pod gets its index", j.Name)
	}
	if s.Completions == nil || *s.Completions < 1 {
		return location{}, fmt.Errorf("job %s: completions must be set (the number of shards)", j.Name)
	}
	n := int(*s.Completions)
	if s.Parallelism != nil && (*s.Parallelism < 1 || int(*s.Parallelism) > n) {
		return location{}, fmt.Errorf("job %s: parallelism %d, want 1 to completions (%d)", j.Name, *s.Parallelism, n)
	}
	pod := s.Template.Spec
	if len(pod.Containers) != 1 {
		return location{}, fmt.Errorf("job %s: %d containers, want 1", j.Name, len(pod.Containers))
	}
	c := pod.Containers[0]
	var first cliRun
	for i := range n {
		env, err := podEnv(c, i)
		if err != nil {
			return location{}, err
		}
		run, err := parseCommand(t, c, env)
		if err != nil {
			return location{}, fmt.Errorf("job %s, pod %d: %w", j.Name, i, err)
		}
		if run.command != "sweep" || run.shard != i || run.shards != n {
			return location{}, fmt.Errorf("job %s: pod %d of %d runs %s shard %d/%d, want %d/%d", j.Name, i, n, run.command, run.shard, run.shards, i, n)
		}
		first = run
	}
	if cpu := c.Resources.Requests.Cpu(); first.threads != 0 && cpu.Cmp(*resource.NewQuantity(int64(first.threads), resource.DecimalSI)) != 0 {
		return location{}, fmt.Errorf("job %s: --threads=%d but the pod requests %s CPUs", j.Name, first.threads, cpu)
	}
	if cfg, _, err := locate(pod, c, first.config); err != nil {
		return location{}, err
	} else if !strings.HasPrefix(cfg.source, "configmap ") {
		return location{}, fmt.Errorf("job %s: the sweep file %s is not in a ConfigMap", j.Name, first.config)
	}
	out, mount, err := locate(pod, c, first.out)
	if err != nil {
		return location{}, err
	}
	if mount.ReadOnly {
		return location{}, fmt.Errorf("job %s: the results volume is mounted read-only", j.Name)
	}
	return out, checkClaim(m, out, n > 1 && (s.Parallelism == nil || *s.Parallelism > 1))
}

// checkClaim checks that the claim behind loc is one of the manifests, and
// that it can be mounted by pods on several nodes when shared is set.
func checkClaim(m *manifests, loc location, shared bool) error {
	name, ok := strings.CutPrefix(loc.source, "claim ")
	if !ok {
		return fmt.Errorf("the results (%s) are not on a claim", loc.source)
	}
	pvc := m.pvcs[name]
	if pvc == nil {
		return fmt.Errorf("claim %s is not defined in deploy/k8s", name)
	}
	for _, mode := range pvc.Spec.AccessModes {
		if mode == corev1.ReadWriteMany || !shared {
			return nil
		}
	}
	return fmt.Errorf("claim %s: pods of one Job on several nodes write to it, so it must be ReadWriteMany (has %v)", name, pvc.Spec.AccessModes)
}

// checkReport checks that the report Job reads, and the results pod
// shows, the directory the sweep Job writes.
func checkReport(t *testing.T, m *manifests, j *batchv1.Job, results location) error {
	if s := j.Spec.CompletionMode; s != nil && *s == batchv1.IndexedCompletion {
		return fmt.Errorf("job %s: the report runs once, not indexed", j.Name)
	}
	pod := j.Spec.Template.Spec
	for _, c := range pod.Containers {
		run, err := parseCommand(t, c, nil)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		loc, _, err := locate(pod, c, run.dir)
		if err != nil {
			return fmt.Errorf("job %s: %w", j.Name, err)
		}
		if loc != results {
			return fmt.Errorf("job %s: reports %s (%s:%s) but the sweep writes %s:%s", j.Name, run.dir, loc.source, loc.path, results.source, results.path)
		}
	}
	for _, p := range m.pods {
		for _, c := range p.Spec.Containers {
			shown := false
			for _, mount := range c.VolumeMounts {
				if loc, _, err := locate(p.Spec, c, mount.MountPath); err == nil && loc.source == results.source && loc.path == "/" {
					shown = true
				}
			}
			if !shown {
				return fmt.Errorf("pod %s: does not mount the whole results claim (%s)", p.Name, results.source)
			}
		}
	}
	return nil
}

// checkManifests finds the sweep Job and the report Job and checks both.
func checkManifests(t *testing.T, m *manifests) error {
	var sweepJob, reportJob *batchv1.Job
	for _, j := range m.jobs {
		for _, c := range j.Spec.Template.Spec.Containers {
			switch {
			case len(c.Args) > 0 && c.Args[0] == "sweep":
				sweepJob = j
			case len(c.Args) > 0 && c.Args[0] == "report":
				reportJob = j
			}
		}
	}
	if sweepJob == nil || reportJob == nil {
		return fmt.Errorf("want a Job running `qmulgpu sweep` and one running `qmulgpu report`, found %d Jobs", len(m.jobs))
	}
	results, err := checkSweepJob(t, m, sweepJob)
	if err != nil {
		return err
	}
	return checkReport(t, m, reportJob, results)
}

func readManifests(t *testing.T) map[string][]byte {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(manifestDir, "*.yaml"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no manifests in %s (%v)", manifestDir, err)
	}
	files := map[string][]byte{}
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		files[filepath.Base(n)] = b
	}
	return files
}

func checkFiles(t *testing.T, files map[string][]byte) error {
	m, err := decodeManifests(files)
	if err != nil {
		return err
	}
	return checkManifests(t, m)
}

// TestKubernetesManifests checks deploy/k8s as it is.
func TestKubernetesManifests(t *testing.T) {
	if err := checkFiles(t, readManifests(t)); err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesManifestMistakes makes one mistake at a time in the
// manifests; each must be caught.
func TestKubernetesManifestMistakes(t *testing.T) {
	cases := []struct{ name, file, old, new, want string }{
		{"unknown field", "sweep-job.yaml", "completionMode: Indexed", "completionsMode: Indexed", `unknown field "completionsMode"`},
		{"field of the wrong type", "sweep-job.yaml", "completions: 4 ", `completions: "4" `, "cannot unmarshal string"},
		{"duplicated field", "sweep-job.yaml", "  backoffLimit: 8\n", "  backoffLimit: 8\n  backoffLimit: 9\n", `key "backoffLimit" already set`},
		{"unknown kind", "sweep-job.yaml", "apiVersion: batch/v1", "apiVersion: batch/v2", "not a kind"},
		{"not indexed", "sweep-job.yaml", "completionMode: Indexed", "completionMode: NonIndexed", "must be Indexed"},
		{"fewer shards than pods", "sweep-job.yaml", "--shards=4 ", "--shards=3 ", "pod 0 of 4 runs sweep shard 0/3, want 0/4"},
		{"more shards than pods", "sweep-job.yaml", "--shards=4 ", "--shards=5 ", "pod 0 of 4 runs sweep shard 0/5"},
		{"no shard count", "sweep-job.yaml", "            - --shards=4 # = completions\n", "", "needs --shards"},
		{"one shard for all pods", "sweep-job.yaml", "--shards=4 ", "--shard=0/4 ", "pod 1 of 4 runs sweep shard 0/4"},
		{"misspelt flag", "sweep-job.yaml", "--out=/results", "--output=/results", "flag provided but not defined: -output"},
		{"results not on a volume", "sweep-job.yaml", "--out=/results", "--out=/tmp/results", "/tmp/results is not on a volume"},
		{"sweep file not in the ConfigMap", "sweep-job.yaml", "--config=/config/sweep.yaml", "--config=/results/sweep.yaml", "not in a ConfigMap"},
		{"threads not the CPU request", "sweep-job.yaml", "--threads=4 ", "--threads=2 ", "--threads=2 but the pod requests 4 CPUs"},
		{"claim for one node", "sweep-job.yaml", "accessModes: [ReadWriteMany]", "accessModes: [ReadWriteOnce]", "must be ReadWriteMany"},
		{"report reads elsewhere", "report-job.yaml", "args: [report, /results]", "args: [report, /results/sweep]", "reports /results/sweep"},
		{"report on another claim", "report-job.yaml", "claimName: qmul-sweep-results\n---", "claimName: other-results\n---", "claim other-results:/"},
		{"results pod on another claim", "report-job.yaml", "      persistentVolumeClaim:\n        claimName: qmul-sweep-results\n", "      persistentVolumeClaim:\n        claimName: other\n", "pod qmul-sweep-results: does not mount"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := readManifests(t)
			text := files[tc.file]
			if bytes.Count(text, []byte(tc.old)) != 1 {
				t.Fatalf("%s: %q occurs %d times, want once", tc.file, tc.old, bytes.Count(text, []byte(tc.old)))
			}
			files[tc.file] = bytes.Replace(text, []byte(tc.old), []byte(tc.new), 1)
			err := checkFiles(t, files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got error %v, want one containing %q", err, tc.want)
			}
		})
	}
}
