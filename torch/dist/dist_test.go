package dist

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hiddenlab/hiddenlab/torch"
)

func TestFromEnvironment(t *testing.T) {
	env := func(kv ...string) func(string) (string, bool) {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
	}
	cases := []struct {
		name string
		look func(string) (string, bool)
		ok   bool
		want Env
		err  string
	}{
		{"single process", env(), false, Env{}, ""},
		{"world 1", env("WORLD_SIZE", "1"), false, Env{}, ""},
		{"torchrun", env("WORLD_SIZE", "4", "RANK", "2", "LOCAL_RANK", "0", "MASTER_ADDR", "node1", "MASTER_PORT", "29501"), true,
			Env{Addr: "node1", Port: 29501, Rank: 2, World: 4, Local: 0}, ""},
		{"local rank defaults to rank", env("WORLD_SIZE", "2", "RANK", "1", "MASTER_ADDR", "h", "MASTER_PORT", "1"), true,
			Env{Addr: "h", Port: 1, Rank: 1, World: 2, Local: 1}, ""},
		{"missing addr", env("WORLD_SIZE", "2", "RANK", "0", "MASTER_PORT", "1"), false, Env{}, "MASTER_ADDR is unset"},
		{"missing rank", env("WORLD_SIZE", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1"), false, Env{}, "RANK is unset"},
		{"bad rank", env("WORLD_SIZE", "2", "RANK", "2", "MASTER_ADDR", "h", "MASTER_PORT", "1"), false, Env{}, "RANK=2 is outside"},
		{"not a number", env("WORLD_SIZE", "2", "RANK", "x", "MASTER_ADDR", "h", "MASTER_PORT", "1"), false, Env{}, `RANK="x" is not an integer`},
	}
	for _, c := range cases {
		e, ok, err := FromEnvironment(c.look)
		if c.err != "" {
			require.ErrorContains(t, err, c.err, c.name)
			continue
		}
		require.NoError(t, err, c.name)
		require.Equal(t, c.ok, ok, c.name)
		if ok {
			require.Equal(t, c.want, e, c.name)
		}
	}
}

// FreePort finds a free TCP port on loopback.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// spawn starts this test binary as rank of a world-size group running the
// child test named by mode.
func spawn(t *testing.T, port, rank, world int, mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=TestDistChild", "-test.v")
	cmd.Env = append(os.Environ(), "HL_DIST_CHILD="+mode, "MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port),
		"RANK="+strconv.Itoa(rank), "WORLD_SIZE="+strconv.Itoa(world), "LOCAL_RANK="+strconv.Itoa(rank))
	return cmd
}

// TestDistChild is the body of a spawned rank (skipped in a normal run).
func TestDistChild(t *testing.T) {
	mode := os.Getenv("HL_DIST_CHILD")
	if mode == "" {
		t.Skip("runs only as a spawned rank")
	}
	torch.RunLocked(func() {
		g, err := JoinFromEnvironment(torch.DeviceCPU, 5*time.Second)
		require.NoError(t, err)
		defer g.Close()
		s := torch.NewScope()
		defer s.Close()
		switch mode {
		case "collectives":
			x := torch.FromSlice([]float32{float32(g.Rank + 1), 10}, nil)
			y := torch.Full([]int{3}, float64(g.Rank), torch.Float64)
			require.NoError(t, g.AllReduceMean([]*torch.Tensor{x, y}))
			b := torch.Full([]int{2}, float64(7*g.Rank+1), torch.Int64)
			require.NoError(t, g.Broadcast([]*torch.Tensor{b}, 1))
			require.NoError(t, g.Barrier())
			fmt.Printf("RESULT rank=%d mean=%v %v bcast=%v\n", g.Rank, x.Float64s(), y.Float64s(), b.Int64s())
		case "die":
			if g.Rank == 1 {
				os.Exit(3) // a rank that fails after joining
			}
			start := time.Now()
			x := torch.Ones([]int{4})
			err := g.AllReduceSum([]*torch.Tensor{x})
			fmt.Printf("RESULT rank=%d err=%v after=%.1fs\n", g.Rank, err != nil, time.Since(start).Seconds())
			require.Error(t, err)
		}
	})
}

func TestTwoRanksOnLoopback(t *testing.T) {
	port := FreePort(t)
	var outs [2]strings.Builder
	var cmds [2]*exec.Cmd
	for r := 0; r < 2; r++ {
		cmds[r] = spawn(t, port, r, 2, "collectives")
		cmds[r].Stdout, cmds[r].Stderr = &outs[r], &outs[r]
		require.NoError(t, cmds[r].Start())
	}
	for r := 0; r < 2; r++ {
		require.NoError(t, cmds[r].Wait(), outs[r].String())
	}
	for r := 0; r < 2; r++ {
		// mean of (1, 10) and (2, 10) is (1.5, 10); of 0s and 1s is 0.5; rank 1 broadcasts 8.
		require.Contains(t, outs[r].String(), fmt.Sprintf("RESULT rank=%d mean=[1.5 10] [0.5 0.5 0.5] bcast=[8 8]", r))
	}
}

// TestKilledRankFailsFast: when a rank dies, the others' next collective
// fails within a bounded time instead of hanging.
func TestKilledRankFailsFast(t *testing.T) {
	port := FreePort(t)
	var out strings.Builder
	r0, r1 := spawn(t, port, 0, 2, "die"), spawn(t, port, 1, 2, "die")
	r0.Stdout, r0.Stderr = &out, &out
	require.NoError(t, r0.Start())
	require.NoError(t, r1.Start())
	start := time.Now()
	r0.Wait()
	r1.Wait()
	require.Less(t, time.Since(start), 60*time.Second)
	require.Contains(t, out.String(), "RESULT rank=0 err=true", out.String())
	t.Logf("%s", strings.TrimSpace(out.String()[strings.Index(out.String(), "RESULT"):]))
}
