package teststack

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// StopGrace is how long Stop waits after SIGTERM before it sends SIGKILL. More than 5 s: a Go
// server's Shutdown (Dex's, authproxy's) waits up to 5 s for a connection that has sent no
// request yet, such as one Chromium opened ahead of need (net/http counts a new connection as
// idle only after 5 s), so at 5 s a loaded machine failed a clean stop.
const StopGrace = 10 * time.Second

// clearedEnv are the prefixes of the variables a child does not inherit: its configuration is
// only what the caller gives it.
var clearedEnv = []string{"AUTHPROXY_", "LEGACYAPP_"}

// Set is a group of child processes sharing a working directory, where their log files go.
// Its methods may be called from several goroutines.
type Set struct {
	// Dir is the processes' working directory and the home of their logs.
	Dir string
	// KillWithParent has the kernel kill each child should this process die without stopping
	// it (PR_SET_PDEATHSIG).
	KillWithParent bool
	// Output, when set, gives the writer a process's output goes to (closed once it has exited),
	// instead of the log file Dir/name.log; Proc.LogPath is then empty.
	Output func(name string) (io.WriteCloser, error)

	mu    sync.Mutex
	procs []*Proc
}

// Proc is one child process.
type Proc struct {
	// Name names the process in logs and errors, and its log file (Name.log).
	Name string
	// Cmd is the running command; Cmd.Process can be signalled (SIGSTOP, SIGCONT, …).
	Cmd *exec.Cmd
	// LogPath is the file holding the process's output; empty when it went to a caller's writer.
	LogPath string

	done chan struct{}
	err  error // set before done is closed
}

// Start runs bin with args in s.Dir, its output in s.Dir/name.log (or to s.Output), with env
// added to this process's environment cleared of AUTHPROXY_* and LEGACYAPP_* variables.
func (s *Set) Start(name string, env []string, bin string, args ...string) (*Proc, error) {
	if s.Output != nil {
		w, err := s.Output(name)
		if err != nil {
			return nil, fmt.Errorf("teststack: start %s: %w", name, err)
		}
		return s.start(name, w, env, bin, args...)
	}
	logPath := filepath.Join(s.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("teststack: start %s: %w", name, err)
	}
	p, err := s.start(name, f, env, bin, args...)
	if err != nil {
		return nil, err
	}
	p.LogPath = logPath
	return p, nil
}

func (s *Set) start(name string, out io.WriteCloser, env []string, bin string, args ...string) (*Proc, error) {
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = childEnv(os.Environ(), env)
	if s.KillWithParent {
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("teststack: start %s: %w", name, err)
	}
	p := &Proc{Name: name, Cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		out.Close()
		close(p.done)
	}()
	s.mu.Lock()
	s.procs = append(s.procs, p)
	s.mu.Unlock()
	return p, nil
}

// childEnv is parent without the cleared variables, then extra (whose later entries win).
func childEnv(parent, extra []string) []string {
	var env []string
	for _, kv := range parent {
		cleared := false
		for _, prefix := range clearedEnv {
			cleared = cleared || strings.HasPrefix(kv, prefix)
		}
		if !cleared {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Procs returns the processes of the set, oldest first, stopped ones included.
func (s *Set) Procs() []*Proc {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Proc(nil), s.procs...)
}

// StopAll stops every process of the set, newest first, and returns the problems Stop found.
func (s *Set) StopAll() []string {
	procs := s.Procs()
	var problems []string
	for i := len(procs) - 1; i >= 0; i-- {
		problems = append(problems, procs[i].Stop()...)
	}
	return problems
}

// DumpLog writes the last 64 KiB of the log file at path, framed with name, to w.
func DumpLog(w io.Writer, name, path string) {
	if path == "" {
		return
	}
	log, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(w, "----- %s: %v\n", name, err)
		return
	}
	if len(log) > 64<<10 {
		log = append([]byte("[…]\n"), log[len(log)-64<<10:]...)
	}
	fmt.Fprintf(w, "----- %s.log -----\n%s----- end of %s.log -----\n", name, log, name)
}

// Done is closed once the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Err is how the process ended (nil for exit status 0); valid once Done is closed.
func (p *Proc) Err() error {
	<-p.done
	return p.err
}

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.Cmd.Process.Pid }

// Log returns what the process has written to its log file so far.
func (p *Proc) Log() (string, error) {
	if p.LogPath == "" {
		return "", fmt.Errorf("teststack: %s has no log file", p.Name)
	}
	b, err := os.ReadFile(p.LogPath)
	if err != nil {
		return "", fmt.Errorf("teststack: %w", err)
	}
	return string(b), nil
}

// Stop ends the process (SIGTERM, then SIGKILL after StopGrace) and returns what went wrong: it
// had exited already, it did not stop on SIGTERM, or its log shows a data race (a -race build).
func (p *Proc) Stop() []string {
	var problems []string
	if p.Exited() {
		problems = append(problems, fmt.Sprintf("%s exited before it was stopped: %v", p.Name, p.err))
	} else {
		_ = p.Cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopGrace):
			problems = append(problems, fmt.Sprintf("%s did not stop within %v of SIGTERM", p.Name, StopGrace))
			_ = p.Cmd.Process.Kill()
			<-p.done
		}
	}
	if p.RaceLogged() {
		problems = append(problems, p.Name+" logged a data race")
	}
	return problems
}

// RaceLogged reports whether the process's log file shows a data race.
func (p *Proc) RaceLogged() bool {
	if p.LogPath == "" {
		return false
	}
	log, err := os.ReadFile(p.LogPath)
	return err == nil && bytes.Contains(log, []byte("WARNING: DATA RACE"))
}
