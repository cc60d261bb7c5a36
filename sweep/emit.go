package sweep

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/hiddenlab/hiddenlab/internal/atomicio"
)

// shellQuote quotes s for bash.
func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// taskScript is the bash that runs task $index of the sweep with bin: it
// skips a completed run, resumes an interrupted one, or starts it.
func (e *Experiment) taskScript(bin, index string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "case \"%s\" in\n", index)
	for i, j := range e.Jobs() {
		args := append([]string{"run"}, e.Args(j)...)
		q := make([]string, len(args))
		for k, a := range args {
			q[k] = shellQuote(a)
		}
		fmt.Fprintf(&b, "  %d) dir=%s; args=(%s) ;; # %s, seed %d\n", i, shellQuote(j.Dir), strings.Join(q, " "), j.Point.Name, j.Seed)
	}
	b.WriteString("  *) echo \"no task $TASK\" >&2; exit 2 ;;\nesac\n")
	b.WriteString("if grep -qs '\"status\": \"completed\"' \"$dir/summary.json\"; then echo \"$dir: already completed\"; exit 0; fi\n")
	fmt.Fprintf(&b, "if [ -f \"$dir/recipe.yaml\" ]; then exec %s run -resume \"$dir\" output.progress=false; fi\n", shellQuote(bin))
	fmt.Fprintf(&b, "exec %s \"${args[@]}\"\n", shellQuote(bin))
	return b.String()
}

// Slurm renders a Slurm job-array script running one configuration × seed
// per array task (at most e.Workers at a time, e.Threads CPUs each). After
// the array finishes, `hiddenlab sweep -tabulate` builds the same tables.
func (e *Experiment) Slurm(bin string) string {
	n := len(e.Jobs())
	var b strings.Builder
	fmt.Fprintf(&b, `#!/bin/bash
# Slurm job array for hiddenlab sweep %q (%d runs: %d configurations × %d seeds),
# generated from %s. Submit from the repository root:  sbatch %s
# When it is done, tabulate:  hiddenlab sweep -tabulate %s
#SBATCH --job-name=hiddenlab-%s
#SBATCH --array=0-%d%%%d
#SBATCH --cpus-per-task=%d
#SBATCH --output=%s
set -euo pipefail
cd "${SLURM_SUBMIT_DIR:-.}"
export OMP_NUM_THREADS=%d
TASK=${SLURM_ARRAY_TASK_ID:?run under sbatch --array}
`, e.Name, n, len(e.Points()), len(e.Seeds), e.path, filepath.Join(e.Dir, "slurm.sh"), e.path,
		e.Name, n-1, e.Workers, e.Threads, filepath.Join(e.Dir, "slurm-%A_%a.log"), e.Threads)
	b.WriteString(e.taskScript(bin, "$TASK"))
	return b.String()
}

// Kubernetes renders an indexed Job manifest: completion index i runs task i
// of the sweep in image (the repository at /work with bin built), e.Workers
// pods at a time, writing into a shared volume claim mounted at the sweep
// directory.
func (e *Experiment) Kubernetes(image, bin, claim string) ([]byte, error) {
	n := len(e.Jobs())
	var tasks []string
	for _, j := range e.Jobs() {
		tasks = append(tasks, fmt.Sprintf("%s seed %d -> %s", j.Point.Name, j.Seed, j.Dir))
	}
	script := "set -euo pipefail\ncd /work\nexport OMP_NUM_THREADS=" + fmt.Sprint(e.Threads) + "\nTASK=$JOB_COMPLETION_INDEX\n" + e.taskScript(bin, "$TASK")
	job := map[string]any{
		"apiVersion": "batch/v1",
		"kind":       "Job",
		"metadata": map[string]any{
			"name":   "hiddenlab-" + strings.ToLower(sanitizeDNS(e.Name)),
			"labels": map[string]any{"app": "hiddenlab", "sweep": sanitizeDNS(e.Name)},
			"annotations": map[string]any{
				"github.com/hiddenlab/hiddenlab/experiment": e.path,
				"github.com/hiddenlab/hiddenlab/tasks":      strings.Join(tasks, "\n"),
			},
		},
		"spec": map[string]any{
			"completionMode": "Indexed",
			"completions":    n,
			"parallelism":    e.Workers,
			"backoffLimit":   n,
			"template": map[string]any{
				"metadata": map[string]any{"labels": map[string]any{"app": "hiddenlab", "sweep": sanitizeDNS(e.Name)}},
				"spec": map[string]any{
					"restartPolicy": "OnFailure",
					"containers": []any{map[string]any{
						"name":    "run",
						"image":   image,
						"command": []any{"/bin/bash", "-c", script},
						"resources": map[string]any{
							"requests": map[string]any{"cpu": fmt.Sprint(e.Threads), "memory": "4Gi"},
							"limits":   map[string]any{"cpu": fmt.Sprint(e.Threads)},
						},
						"volumeMounts": []any{map[string]any{"name": "sweeps", "mountPath": filepath.Join("/work", e.Dir)}},
					}},
					"volumes": []any{map[string]any{"name": "sweeps", "persistentVolumeClaim": map[string]any{"claimName": claim}}},
				},
			},
		},
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Kubernetes indexed Job for hiddenlab sweep %q (%d runs), generated from %s.\n# kubectl apply -f %s; then tabulate from the volume: hiddenlab sweep -tabulate %s\n",
		e.Name, n, e.path, filepath.Join(e.Dir, "job.yaml"), e.path)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(job); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func sanitizeDNS(s string) string {
	out := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			return r
		case r >= 'A' && r <= 'Z':
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
	return strings.Trim(out, "-")
}

// Emit writes the Slurm script (kind "slurm") or the Kubernetes manifest
// ("k8s") into the sweep directory and returns its path.
func Emit(e *Experiment, kind, bin, image, claim string) (string, error) {
	switch kind {
	case "slurm":
		path := filepath.Join(e.Dir, "slurm.sh")
		return path, atomicio.WriteFile(path, []byte(e.Slurm(bin)), 0o755)
	case "k8s", "kubernetes":
		b, err := e.Kubernetes(image, bin, claim)
		if err != nil {
			return "", err
		}
		path := filepath.Join(e.Dir, "job.yaml")
		return path, atomicio.WriteFile(path, b, 0o644)
	}
	return "", fmt.Errorf("sweep: -emit %q: want slurm or k8s", kind)
}
