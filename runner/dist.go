package runner

import (
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hiddenlab/hiddenlab/experiment"
	"github.com/hiddenlab/hiddenlab/recipe"
	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/dist"
	"github.com/hiddenlab/hiddenlab/torch/nn"
)

// DefaultDistTimeout bounds the rendezvous and every collective unless
// HIDDENLAB_DIST_TIMEOUT (a Go duration, e.g. 90s) says otherwise.
const DefaultDistTimeout = 30 * time.Minute

// joinGroup joins the data-parallel process group the torchrun variables
// describe (nil for one process), on the device type of the recipe's train
// section. The join has a Go-side deadline: whatever the peer on the port
// does (a foreign listener that never answers, say), every rank fails within
// the timeout, and SIGINT/SIGTERM end a joining rank at once.
func joinGroup(raw *recipe.Raw, o Options) (*dist.Group, error) {
	lookup := func(k string) (string, bool) {
		for _, kv := range o.Env {
			if name, v, ok := strings.Cut(kv, "="); ok && name == k {
				return v, true
			}
		}
		return "", false
	}
	// The setting is checked whether or not there is a group to join.
	timeout := DefaultDistTimeout
	if v, ok := lookup("HIDDENLAB_DIST_TIMEOUT"); ok && v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("environment: HIDDENLAB_DIST_TIMEOUT=%q: want a positive Go duration such as 90s or 5m", v)
		}
		timeout = d
	}
	e, ok, err := dist.FromEnvironment(lookup)
	if err != nil || !ok {
		return nil, err
	}
	devType := torch.DeviceCPU
	if sec := raw.Section("train"); sec != nil {
		if d, _ := sec["device"].(string); d != "" {
			if dev, err := parseDevice(d); err == nil {
				devType = dev.Type
			}
		}
	}
	o.Log("data-parallel: rank %d of %d (local rank %d), rendezvous %s:%d, timeout %v", e.Rank, e.World, e.Local, e.Addr, e.Port, timeout)

	type joined struct {
		g   *dist.Group
		err error
	}
	done := make(chan joined, 1)
	go func() {
		g, err := dist.Join(e, devType, timeout)
		done <- joined{g, err}
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sig)
	// The C++ store has its own timeout; the Go deadline is a little later
	// so that its clearer message wins when it fires.
	deadline := time.NewTimer(timeout + 2*time.Second)
	defer deadline.Stop()
	select {
	case j := <-done:
		return j.g, j.err
	case <-deadline.C:
		return nil, fmt.Errorf("rank %d: joining the process group at %s:%d: no rendezvous within %v (HIDDENLAB_DIST_TIMEOUT); is another program listening on MASTER_PORT?", e.Rank, e.Addr, e.Port, timeout)
	case s := <-sig:
		return nil, fmt.Errorf("rank %d: %v while joining the process group: %w", e.Rank, s, ErrInterrupted)
	}
}

// syncStep is a data-parallel step's communication: the gradients are
// averaged over the ranks (bucketed), and the logs averaged (tokens summed)
// together with the loss and the stop flag, so every rank logs the global
// batch's numbers and stops at the same step. It returns the global loss.
func (t *trainer) syncStep(params []*nn.Param, logs experiment.Logs, loss float64) (float64, error) {
	var grads []*torch.Tensor
	for _, p := range params {
		if g := p.T.Grad(); g != nil {
			grads = append(grads, g)
		}
	}
	if err := t.group.AllReduceMean(grads); err != nil {
		return 0, err
	}
	keys := sortedKeys(logs)
	vals := []float64{0, loss}
	if t.localStop(t.step + 1) {
		vals[0] = 1
	}
	for _, k := range keys {
		vals = append(vals, logs[k])
	}
	v := torch.FromSlice(vals, nil)
	if err := t.group.AllReduceSum([]*torch.Tensor{v}); err != nil {
		return 0, err
	}
	sum := v.Float64s()
	t.stopAll = sum[0] > 0
	W := float64(t.group.World)
	for i, k := range keys {
		if k == "tokens" {
			logs[k] = sum[2+i]
		} else {
			logs[k] = sum[2+i] / W
		}
	}
	return sum[1] / W, nil
}

// broadcastWeights makes every rank start from rank 0's parameters.
func (t *trainer) broadcastWeights() error {
	if t.group == nil {
		return nil
	}
	var ts []*torch.Tensor
	for _, p := range t.exp.Store().StateDict() {
		ts = append(ts, p.T)
	}
	return t.group.Broadcast(ts, 0)
}
