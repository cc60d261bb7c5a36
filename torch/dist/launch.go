package dist

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Launch starts nproc copies of bin with args on this machine, as torchrun
// does: each gets MASTER_ADDR=127.0.0.1, a free MASTER_PORT, RANK,
// LOCAL_RANK and WORLD_SIZE (plus env), rank 0 writing to stdout and stderr
// and the others to stderr with a "[rank N] " prefix. When one process fails
// the others are interrupted (SIGINT: they checkpoint if they can) and the
// error names the first failure. Cancelling ctx interrupts them all.
func Launch(ctx context.Context, bin string, args []string, nproc int, env []string, stdout, stderr io.Writer) error {
	if nproc < 1 {
		return fmt.Errorf("launch: nproc %d, want at least 1", nproc)
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	type result struct {
		rank int
		err  error
	}
	done := make(chan result, nproc)
	cmds := make([]*exec.Cmd, nproc)
	var wg sync.WaitGroup
	// The ranks die with the launcher, even by kill -9 (parent-death SIGKILL,
	// which follows the thread that started them: it stays locked here until
	// they are done), and form their own process group, so a terminal's
	// Ctrl-C reaches them once, through the launcher.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for r := 0; r < nproc; r++ {
		cmd := exec.Command(bin, args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		cmd.Env = append(append(os.Environ(), env...),
			"MASTER_ADDR=127.0.0.1", "MASTER_PORT="+strconv.Itoa(port), "RANK="+strconv.Itoa(r),
			"LOCAL_RANK="+strconv.Itoa(r), "WORLD_SIZE="+strconv.Itoa(nproc))
		if r == 0 {
			cmd.Stdout, cmd.Stderr = stdout, stderr
		} else {
			w := prefixed(stderr, fmt.Sprintf("[rank %d] ", r), &wg)
			defer w.Close()
			cmd.Stdout, cmd.Stderr = w, w
		}
		if err := cmd.Start(); err != nil {
			for _, c := range cmds[:r] {
				c.Process.Kill()
			}
			return fmt.Errorf("launch rank %d: %w", r, err)
		}
		cmds[r] = cmd
		go func(r int) { done <- result{r, cmd.Wait()} }(r)
	}
	interrupt := func() {
		for _, c := range cmds {
			if c.ProcessState == nil {
				c.Process.Signal(syscall.SIGINT)
			}
		}
	}
	var first *result
	for left := nproc; left > 0; left-- {
		select {
		case res := <-done:
			if res.err != nil && first == nil {
				first = &res
				interrupt()
				go func() { // ranks stuck in a collective get SIGKILL after a grace period
					time.Sleep(2 * time.Minute)
					for _, c := range cmds {
						c.Process.Kill()
					}
				}()
			}
		case <-ctx.Done():
			interrupt()
			ctx = context.Background()
			left++
		}
	}
	if first != nil {
		var ee *exec.ExitError
		if errors.As(first.err, &ee) {
			return fmt.Errorf("rank %d exited with status %d (the others were stopped)", first.rank, ee.ExitCode())
		}
		return fmt.Errorf("rank %d: %w", first.rank, first.err)
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("launch: finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// prefixed returns a writer that prefixes every line written to w.
func prefixed(w io.Writer, prefix string, wg *sync.WaitGroup) io.WriteCloser {
	pr, pw := io.Pipe()
	wg.Add(1)
	go func() {
		defer wg.Done()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(w, "%s%s\n", prefix, sc.Text())
		}
	}()
	return pw
}
