// Package dist is data-parallel communication over libtorch's c10d: a process
// group (Gloo for CPU tensors, NCCL for CUDA ones) joined through a TCPStore
// rendezvous, with the launch contract of torchrun: MASTER_ADDR, MASTER_PORT,
// RANK, WORLD_SIZE and LOCAL_RANK, so Slurm, Kubernetes PyTorchJobs or any
// torchrun-style launcher can start hiddenlab unchanged.
package dist

import (
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/hiddenlab/hiddenlab/torch"
	"github.com/hiddenlab/hiddenlab/torch/internal/capi"
)

// Group is this process's membership in a process group.
type Group struct {
	h                  capi.Group
	Rank, World, Local int
	Addr               string
	Port               int
	Timeout            time.Duration
	BucketBytes        int64
}

// Env is the torchrun launch contract read from the environment.
type Env struct {
	Addr                     string
	Port, Rank, World, Local int
}

// FromEnvironment reads MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE and
// LOCAL_RANK (lookup is os.LookupEnv in production). ok is false when
// WORLD_SIZE is unset or 1: a single process needs no group.
func FromEnvironment(lookup func(string) (string, bool)) (e Env, ok bool, err error) {
	ws, set := lookup("WORLD_SIZE")
	if !set || ws == "" || ws == "1" {
		return Env{}, false, nil
	}
	num := func(name string, dflt int, required bool) int {
		v, set := lookup(name)
		if !set || v == "" {
			if required && err == nil {
				err = fmt.Errorf("%s is unset (WORLD_SIZE=%s asks for a process group; set MASTER_ADDR, MASTER_PORT, RANK and WORLD_SIZE, as torchrun does)", name, ws)
			}
			return dflt
		}
		n, perr := strconv.Atoi(v)
		if perr != nil && err == nil {
			err = fmt.Errorf("%s=%q is not an integer", name, v)
		}
		return n
	}
	e.World = num("WORLD_SIZE", 1, true)
	e.Rank = num("RANK", 0, true)
	e.Port = num("MASTER_PORT", 29500, true)
	e.Local = num("LOCAL_RANK", e.Rank, false)
	addr, set := lookup("MASTER_ADDR")
	if (!set || addr == "") && err == nil {
		err = fmt.Errorf("MASTER_ADDR is unset (WORLD_SIZE=%s asks for a process group)", ws)
	}
	e.Addr = addr
	if err == nil && (e.World < 1 || e.Rank < 0 || e.Rank >= e.World) {
		err = fmt.Errorf("RANK=%d is outside 0..WORLD_SIZE-1 (WORLD_SIZE=%d)", e.Rank, e.World)
	}
	return e, err == nil, err
}

// Join connects to the group described by e; CUDA device types use NCCL,
// CPU Gloo. Every later collective fails, rather than hangs, when a peer dies
// or does not answer within timeout.
func Join(e Env, device torch.DeviceType, timeout time.Duration) (*Group, error) {
	h, err := capi.GroupNew(e.Addr, e.Port, e.Rank, e.World, int32(device), timeout.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("joining the process group at %s:%d as rank %d of %d: %v", e.Addr, e.Port, e.Rank, e.World, err)
	}
	return &Group{h: h, Rank: e.Rank, World: e.World, Local: e.Local, Addr: e.Addr, Port: e.Port, Timeout: timeout, BucketBytes: 25 << 20}, nil
}

// JoinFromEnvironment joins the group of the torchrun variables, or returns
// nil for a single process.
func JoinFromEnvironment(device torch.DeviceType, timeout time.Duration) (*Group, error) {
	e, ok, err := FromEnvironment(os.LookupEnv)
	if err != nil || !ok {
		return nil, err
	}
	return Join(e, device, timeout)
}

func handles(ts []*torch.Tensor) []capi.Tensor {
	out := make([]capi.Tensor, len(ts))
	for i, t := range ts {
		out[i] = torch.HandleOf(t)
	}
	return out
}

// AllReduceMean averages ts in place across the group (bucketed), as
// DistributedDataParallel averages gradients.
func (g *Group) AllReduceMean(ts []*torch.Tensor) error {
	if err := capi.GroupAllReduce(g.h, handles(ts), true, g.BucketBytes); err != nil {
		return fmt.Errorf("rank %d: all-reduce: %v", g.Rank, err)
	}
	return nil
}

// AllReduceSum sums ts in place across the group.
func (g *Group) AllReduceSum(ts []*torch.Tensor) error {
	if err := capi.GroupAllReduce(g.h, handles(ts), false, g.BucketBytes); err != nil {
		return fmt.Errorf("rank %d: all-reduce: %v", g.Rank, err)
	}
	return nil
}

// Broadcast copies root's ts into every rank's in place.
func (g *Group) Broadcast(ts []*torch.Tensor, root int) error {
	if err := capi.GroupBroadcast(g.h, handles(ts), root); err != nil {
		return fmt.Errorf("rank %d: broadcast: %v", g.Rank, err)
	}
	return nil
}

// Barrier waits until every rank reaches it.
func (g *Group) Barrier() error {
	if err := capi.GroupBarrier(g.h); err != nil {
		return fmt.Errorf("rank %d: barrier: %v", g.Rank, err)
	}
	return nil
}

// IsRoot reports whether g is nil (one process) or this is rank 0: the
// process that writes files.
func (g *Group) IsRoot() bool { return g == nil || g.Rank == 0 }

// Close leaves the group.
func (g *Group) Close() {
	if g != nil && g.h != nil {
		capi.GroupFree(g.h)
		g.h = nil
	}
}
