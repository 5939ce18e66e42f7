// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/containerd/console"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/fifo"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// How long the output of a process may keep flowing after the process ended (a program
// in the box that inherited its stdout); then the streams are cut so Wait returns.
const drainTimeout = 2 * time.Second

// stdio are the FIFO paths containerd gives a process, and whether it has a terminal.
type stdio struct {
	stdin, stdout, stderr string
	terminal              bool
}

// process is one process of a task: the main command (execID "") or an exec. On the host
// it is one `boxlite run` or `boxlite exec` whose stdio is wired to containerd's FIFOs
// (through a pseudo-terminal for a tty); its exit status is the command's (128+N for a
// signal N), as `boxlite run` reports it.
type process struct {
	execID string
	spec   *specs.Process
	io     stdio

	mu         sync.Mutex
	cmd        *exec.Cmd
	pid        int
	status     task.Status
	exitStatus uint32
	exitedAt   time.Time
	forced     int // A signal the shim delivered itself (SIGKILL ends the box): the status.
	stdinW     io.WriteCloser
	console    console.Console
	done       chan struct{}
	// Closed once the start event is published: the exit event waits for it, so
	// containerd never sees a process exit before it started.
	announced    chan struct{}
	announceOnce sync.Once
}

func (p *process) announce() { p.announceOnce.Do(func() { close(p.announced) }) }

func newProcess(execID string, spec *specs.Process, io stdio) *process {
	return &process{execID: execID, spec: spec, io: io, status: task.StatusCreated,
		done: make(chan struct{}), announced: make(chan struct{})}
}

func (p *process) state() (task.Status, int, uint32, time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.status, p.pid, p.exitStatus, p.exitedAt
}

// start runs argv (a boxlite command: cliCommand) with the process's stdio; onExit runs
// once the process has ended and its output is flushed.
func (p *process) start(ctx context.Context, argv []string, onExit func(*process)) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status != task.StatusCreated {
		return fmt.Errorf("process %q was already started", p.execID)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = cliEnv()
	// The CLI dies with the shim; `shim delete` then removes the box (manager.go).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var (
		closeAfterStart []io.Closer
		copies          sync.WaitGroup
		outputs         []io.Closer // Read ends and FIFOs, closed once the output is drained.
	)
	fail := func(err error) error {
		for _, c := range closeAfterStart {
			c.Close()
		}
		for _, c := range outputs {
			c.Close()
		}
		return err
	}
	openOut := func(path string) (io.WriteCloser, error) {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return fifo.OpenFifo(octx, path, syscall.O_WRONLY, 0)
	}
	var stdinSrc io.ReadCloser
	if p.io.stdin != "" {
		f, err := fifo.OpenFifo(context.Background(), p.io.stdin, syscall.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			return fail(fmt.Errorf("open the stdin FIFO: %w", err))
		}
		stdinSrc = f
		closeAfterStart = append(closeAfterStart, f) // Until the copy owns it.
	}
	if p.io.terminal {
		master, slavePath, err := console.NewPty()
		if err != nil {
			return fail(fmt.Errorf("make a pseudo-terminal: %w", err))
		}
		slave, err := os.OpenFile(slavePath, os.O_RDWR|syscall.O_NOCTTY, 0)
		if err != nil {
			master.Close()
			return fail(err)
		}
		closeAfterStart = append(closeAfterStart, slave)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setsid = true
		cmd.SysProcAttr.Setctty = true
		p.console = master
		outputs = append(outputs, master)
		if p.io.stdout != "" {
			out, err := openOut(p.io.stdout)
			if err != nil {
				return fail(fmt.Errorf("open the stdout FIFO: %w", err))
			}
			outputs = append(outputs, out)
			copies.Add(1)
			go func() { defer copies.Done(); io.Copy(out, master) }() //nolint:errcheck
		}
		if stdinSrc != nil {
			p.stdinW = master
			go func() { io.Copy(master, stdinSrc); stdinSrc.Close() }() //nolint:errcheck
		}
	} else {
		if stdinSrc != nil {
			r, w, err := os.Pipe()
			if err != nil {
				return fail(err)
			}
			closeAfterStart = append(closeAfterStart, r)
			cmd.Stdin = r
			p.stdinW = w
			go func() { io.Copy(w, stdinSrc); stdinSrc.Close(); w.Close() }() //nolint:errcheck
		}
		pipeOut := func(path string) (*os.File, error) {
			if path == "" {
				return nil, nil
			}
			out, err := openOut(path)
			if err != nil {
				return nil, fmt.Errorf("open the output FIFO %s: %w", path, err)
			}
			r, w, err := os.Pipe()
			if err != nil {
				out.Close()
				return nil, err
			}
			closeAfterStart = append(closeAfterStart, w)
			outputs = append(outputs, r, out)
			copies.Add(1)
			go func() { defer copies.Done(); io.Copy(out, r) }() //nolint:errcheck
			return w, nil
		}
		// A nil *os.File must not become a non-nil io.Writer: assign only real pipes.
		out, err := pipeOut(p.io.stdout)
		if err != nil {
			return fail(err)
		}
		if out != nil {
			cmd.Stdout = out
		}
		errw, err := pipeOut(p.io.stderr)
		if err != nil {
			return fail(err)
		}
		if errw != nil {
			cmd.Stderr = errw
		}
	}
	if err := cmd.Start(); err != nil {
		return fail(fmt.Errorf("start %s: %w", cliPath(), err))
	}
	for _, c := range closeAfterStart {
		if c != io.Closer(stdinSrc) {
			c.Close()
		}
	}
	p.cmd = cmd
	p.pid = cmd.Process.Pid
	p.status = task.StatusRunning
	go func() {
		err := cmd.Wait()
		drained := make(chan struct{})
		go func() { copies.Wait(); close(drained) }()
		select {
		case <-drained:
		case <-time.After(drainTimeout):
		}
		for _, c := range outputs {
			c.Close()
		}
		status := exitStatusOf(cmd, err)
		p.mu.Lock()
		if p.forced != 0 {
			status = uint32(128 + p.forced)
		}
		p.status = task.StatusStopped
		p.exitStatus = status
		p.exitedAt = time.Now()
		if p.stdinW != nil && p.console == nil {
			p.stdinW.Close()
		}
		p.mu.Unlock()
		close(p.done)
		onExit(p)
	}()
	return nil
}

// abandon ends a process that was never started (its task is deleted): Wait returns.
func (p *process) abandon() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == task.StatusCreated {
		p.status = task.StatusStopped
		p.exitedAt = time.Now()
		close(p.done)
	}
}

// cliCommand is `boxlite ARGS...`, in network namespace netns when it is not "" (nsenter
// joins it and executes the CLI: same pid).
func cliCommand(netns string, args ...string) []string {
	if netns != "" {
		return append([]string{"nsenter", "--net=" + netns, "--", cliPath()}, args...)
	}
	return append([]string{cliPath()}, args...)
}

// exitStatusOf is the CLI's exit code (the command's own), or 128+N when the CLI itself
// was ended by signal N.
func exitStatusOf(cmd *exec.Cmd, err error) uint32 {
	if cmd.ProcessState == nil {
		return 255
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return uint32(128 + int(ws.Signal()))
		}
		return uint32(ws.ExitStatus())
	}
	if err != nil {
		return 255
	}
	return 0
}

// signal delivers sig to the host side of the process: the CLI forwards INT, TERM, HUP
// and QUIT to the command in the box (src/cli/attach.cc).
func (p *process) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.status != task.StatusRunning {
		return errProcessNotRunning
	}
	if sig == syscall.SIGKILL {
		p.forced = int(sig)
	}
	return p.cmd.Process.Signal(sig)
}

// markForced records that the shim ended the process with sig (the box was removed).
func (p *process) markForced(sig syscall.Signal) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.status == task.StatusRunning {
		p.forced = int(sig)
	}
}

func (p *process) closeStdin() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stdinW != nil && p.console == nil {
		p.stdinW.Close()
	}
}

func (p *process) resize(width, height uint32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.console == nil {
		return fmt.Errorf("the process has no terminal")
	}
	return p.console.Resize(console.WinSize{Width: uint16(width), Height: uint16(height)})
}

var errProcessNotRunning = fmt.Errorf("process is not running")
