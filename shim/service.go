// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	cgroupsv1 "github.com/containerd/cgroups/stats/v1"
	eventstypes "github.com/containerd/containerd/api/events"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/mount"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/pkg/shutdown"
	"github.com/containerd/containerd/runtime"
	"github.com/containerd/containerd/runtime/v2/shim"
	taskAPI "github.com/containerd/containerd/runtime/v2/task"
	"github.com/containerd/ttrpc"
	"github.com/containerd/typeurl"
	ptypes "github.com/gogo/protobuf/types"
	"github.com/opencontainers/runtime-spec/specs-go"
)

var (
	_     = (taskAPI.TaskService)(&service{})
	empty = &ptypes.Empty{}
)

// container is one task: one box, its main process and its execs.
type container struct {
	id     string
	bundle string
	box    *box
	spec   *specs.Spec
	init   *process
	execs  map[string]*process
	// A pod's sandbox ("pause") container without a pod id: it only holds the pod's
	// place, so it runs pauseCommand on the host and no box.
	sandbox bool
	kind    taskKind
	pod     string // kindPodContainer: the pod's id (its sandbox task's).
	rootDir string // kindPodContainer: the container's root in the pod's box.
	// kindPodContainer: the pod's volume directory on the host, and the exec flags
	// binding the container's volumes from it (volumes.go).
	mountsDir string
	mounts    []string
	forwarder *loopbackForwarder // kindPodSandbox: port-forward into the box (portforward.go).
}

// pauseCommand is a sandbox container's process: it waits, runs nothing of the image and
// ends on a signal, as the pause image's does.
var pauseCommand = []string{"sleep", "infinity"}

// process is the task's main process or one of its execs; the caller holds service.mu.
func (c *container) process(execID string) (*process, error) {
	if execID == "" {
		return c.init, nil
	}
	p, ok := c.execs[execID]
	if !ok {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "exec %s of task %s", execID, c.id)
	}
	return p, nil
}

// service is the shim's Task service (containerd's runtime/v2/task API).
type service struct {
	ctx       context.Context
	publisher shim.Publisher
	sd        shutdown.Service

	mu         sync.Mutex
	containers map[string]*container
}

func newTaskService(ctx context.Context, publisher shim.Publisher, sd shutdown.Service) *service {
	s := &service{ctx: ctx, publisher: publisher, sd: sd, containers: map[string]*container{}}
	sd.RegisterCallback(func(context.Context) error { return publisher.Close() })
	return s
}

// RegisterTTRPC serves the Task API on the shim's ttrpc server.
func (s *service) RegisterTTRPC(server *ttrpc.Server) error {
	taskAPI.RegisterTaskService(server, s)
	return nil
}

func (s *service) send(topic string, event interface{}) {
	ctx := namespaces.WithNamespace(context.Background(), namespaceOf(s.ctx))
	if err := s.publisher.Publish(ctx, topic, event); err != nil {
		log.G(s.ctx).WithError(err).Warnf("publish %s", topic)
	}
}

func namespaceOf(ctx context.Context) string {
	ns, _ := namespaces.Namespace(ctx)
	return ns
}

func (s *service) get(id string) (*container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.containers[id]
	if !ok {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "task %s", id)
	}
	return c, nil
}

// lookup finds a task and one of its processes (execID "": the main one).
func (s *service) lookup(id, execID string) (*container, *process, error) {
	c, err := s.get(id)
	if err != nil {
		return nil, nil, err
	}
	// A task's execs change under s.mu (Exec, Delete): read them under it too.
	s.mu.Lock()
	p, err := c.process(execID)
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

// Create prepares the box of a task: the bundle's rootfs is mounted and made into the OCI
// layout the box boots from. The VM starts with Start.
func (s *service) Create(ctx context.Context, r *taskAPI.CreateTaskRequest) (_ *taskAPI.CreateTaskResponse, retErr error) {
	if r.Checkpoint != "" || r.ParentCheckpoint != "" {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "boxlite tasks cannot be restored from a checkpoint")
	}
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return nil, err
	}
	spec, err := readSpec(r.Bundle)
	kind, pod := kindPause, ""
	if err == nil {
		kind, pod = kindOf(spec)
		if kind == kindPodSandbox {
			if _, err = podPublishFlags(spec); err == nil {
				_, err = podDiskFlags(spec)
			}
			if err == nil {
				_, err = podClientFlags(spec)
			}
		} else {
			_, err = publishFlags(spec) // Refused here, before anything is made.
		}
	}
	if err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
	}
	s.mu.Lock()
	if _, ok := s.containers[r.ID]; ok {
		s.mu.Unlock()
		return nil, errdefs.ToGRPCf(errdefs.ErrAlreadyExists, "task %s", r.ID)
	}
	var sandboxTask *container
	if kind == kindPodContainer {
		sandboxTask = s.containers[pod]
	}
	s.mu.Unlock()
	if kind == kindPodContainer {
		return s.createPodContainer(ctx, r, spec, ns, pod, sandboxTask)
	}
	b := newBox(ns, r.ID, r.Bundle)
	defer func() {
		if retErr != nil {
			b.cleanup(ctx)
		}
	}()
	sandbox := kind == kindPause
	if kind == kindBox {
		var mounts []mount.Mount
		for _, m := range r.Rootfs {
			mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
		}
		if err := b.mountRootfs(mounts); err != nil {
			return nil, err
		}
		if err := b.writeLayout(ctx); err != nil {
			return nil, fmt.Errorf("make the box's rootfs image: %w", err)
		}
	}
	c := &container{id: r.ID, bundle: r.Bundle, box: b, spec: spec, execs: map[string]*process{},
		init:    newProcess("", spec.Process, stdio{r.Stdin, r.Stdout, r.Stderr, r.Terminal}),
		sandbox: sandbox, kind: kind}
	return s.register(c, r), nil
}

// register serves a created task and tells containerd.
func (s *service) register(c *container, r *taskAPI.CreateTaskRequest) *taskAPI.CreateTaskResponse {
	s.mu.Lock()
	s.containers[r.ID] = c
	s.mu.Unlock()
	s.send(runtime.TaskCreateEventTopic, &eventstypes.TaskCreate{
		ContainerID: r.ID, Bundle: r.Bundle, Rootfs: r.Rootfs,
		IO: &eventstypes.TaskIO{Stdin: r.Stdin, Stdout: r.Stdout, Stderr: r.Stderr, Terminal: r.Terminal},
	})
	return &taskAPI.CreateTaskResponse{Pid: 0}
}

// createPodContainer prepares a container of a pod: its rootfs is mounted and copied into
// its own directory of the pod's box (the sandbox task's, which must run).
func (s *service) createPodContainer(ctx context.Context, r *taskAPI.CreateTaskRequest,
	spec *specs.Spec, ns, pod string, sb *container) (_ *taskAPI.CreateTaskResponse, retErr error) {
	if sb == nil || sb.kind != kindPodSandbox {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition,
			"container %s belongs to pod %s, whose sandbox task this shim does not run: "+
				"create and start the pod's sandbox task first", r.ID, pod)
	}
	if st, _, _, _ := sb.init.state(); st != task.StatusRunning {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition,
			"the sandbox task %s of pod %s is not running: start it first", pod, pod)
	}
	b := podContainerBox(ns, r.ID, pod, r.Bundle)
	root := containerRoot(r.ID)
	mountsDir := podMountsDir(sb.bundle)
	defer func() {
		if retErr != nil {
			podContainerCleanup(ctx, b, root, mountsDir)
		}
	}()
	var mounts []mount.Mount
	for _, m := range r.Rootfs {
		mounts = append(mounts, mount.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	if err := b.mountRootfs(mounts); err != nil {
		return nil, err
	}
	// The pod's box may still be booting (its sandbox task has just started).
	if err := waitRunning(ctx, b.name, sb.init); err != nil {
		return nil, err
	}
	if st, _, _, _ := sb.init.state(); st != task.StatusRunning {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "the box of pod %s has ended", pod)
	}
	// Root's from now on, before any container's files reach the box (volumes.go).
	if err := sealPodMounts(mountsDir); err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "%v", err)
	}
	if err := copyRootfs(ctx, b.name, b.rootfs(), root); err != nil {
		return nil, err
	}
	volumes, err := mountPodVolumes(ctx, mountsDir, r.ID, spec)
	if err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
	}
	c := &container{id: r.ID, bundle: r.Bundle, box: b, spec: spec, execs: map[string]*process{},
		init: newProcess("", spec.Process, stdio{r.Stdin, r.Stdout, r.Stderr, r.Terminal}),
		kind: kindPodContainer, pod: pod, rootDir: root, mountsDir: mountsDir, mounts: volumes}
	return s.register(c, r), nil
}

// podEnded: the box of pod sandbox `sb` is being removed; the processes of the pod's
// containers end with it, killed (status 137).
func (s *service) podEnded(sb *container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.containers {
		if c.kind != kindPodContainer || c.pod != sb.id {
			continue
		}
		c.init.markForced(syscall.SIGKILL)
		for _, e := range c.execs {
			e.markForced(syscall.SIGKILL)
		}
	}
}

// runArgs is the `boxlite run` of a task's main process. Not --rm: an auto-removed box is
// private to the process that runs it, and execs find the box by its name; Delete
// removes it.
func runArgs(c *container) ([]string, error) {
	p := c.spec.Process
	args := []string{"run", "--name", c.box.name, "--rootfs", c.box.layout()}
	if !cacheImages() {
		args = append(args, "--no-warm") // Its template would go with the image at Delete.
	}
	args = append(args, boxFlags(c.spec)...)
	publish, err := publishFlags(c.spec)
	if err != nil {
		return nil, err
	}
	args = append(args, publish...)
	args = append(args, processFlags(p)...)
	if c.init.io.stdin != "" {
		args = append(args, "-i")
	}
	if c.init.io.terminal {
		args = append(args, "-t")
	}
	args = append(args, "--entrypoint", p.Args[0], "--")
	return append(args, p.Args[1:]...), nil
}

// execArgs is the `boxlite exec` of an exec process, or of a pod container's main one.
func execArgs(c *container, p *process) []string {
	args := []string{"exec"}
	if p.io.stdin != "" {
		args = append(args, "-i")
	}
	if p.io.terminal {
		args = append(args, "-t")
	}
	args = append(args, processFlags(p.spec)...)
	if c.rootDir != "" {
		args = append(args, "--rootfs-dir", c.rootDir) // A pod container's root.
		args = append(args, c.mounts...)               // And its volumes.
		args = append(args, containerLimitFlags(c, p.spec)...)
	}
	args = append(args, c.box.name, "--")
	return append(args, p.spec.Args...)
}

// Start boots the box with its main command (returning once its CLI runs, as runc's start
// returns once the process runs), or starts an exec in it once the box runs.
func (s *service) Start(ctx context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	onExit := func(p *process) { s.exited(c, p) }
	defer p.announce() // Also when Start fails after the process started.
	if r.ExecID == "" {
		var args []string
		var err error
		switch c.kind {
		case kindPodSandbox:
			if err = preparePodMounts(podMountsDir(c.bundle)); err != nil {
				return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "%v", err)
			}
			args, err = podRunArgs(c)
		case kindPodContainer:
			args = execArgs(c, p)
		default:
			args, err = runArgs(c)
		}
		if err != nil {
			return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "%v", err)
		}
		netns := networkNamespace(c.spec)
		if c.kind == kindPodContainer {
			netns = "" // The pod's box already runs in the pod's network namespace.
		}
		argv := cliCommand(netns, args...)
		if c.sandbox {
			argv = pauseCommand
		}
		if err := p.start(ctx, argv, onExit); err != nil {
			return nil, errdefs.ToGRPC(err)
		}
		if c.kind == kindPodSandbox && netns != "" {
			// Without it, port-forward reaches the ports the pod publishes only.
			if c.forwarder, err = startLoopbackForwarder(ctx, netns, c.box.name); err != nil {
				log.G(ctx).WithError(err).Warn("port-forward into the pod's box")
			}
		}
		_, pid, _, _ := p.state()
		s.send(runtime.TaskStartEventTopic, &eventstypes.TaskStart{ContainerID: c.id, Pid: uint32(pid)})
		return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
	}
	if c.sandbox {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition,
			"task %s is a pod's sandbox container: it runs no box to exec in", c.id)
	}
	if st, _, _, _ := c.init.state(); st == task.StatusCreated {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "task %s was not started", c.id)
	}
	// The box may still be booting: the exec starts once it runs.
	if err := waitRunning(ctx, c.box.name, c.init); err != nil {
		return nil, err
	}
	if st, _, _, _ := c.init.state(); st != task.StatusRunning {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "task %s is not running", c.id)
	}
	if err := p.start(ctx, cliCommand("", execArgs(c, p)...), onExit); err != nil {
		return nil, errdefs.ToGRPC(err)
	}
	_, pid, _, _ := p.state()
	s.send(runtime.TaskExecStartedEventTopic, &eventstypes.TaskExecStarted{ContainerID: c.id,
		ExecID: r.ExecID, Pid: uint32(pid)})
	return &taskAPI.StartResponse{Pid: uint32(pid)}, nil
}

// waitRunning returns once the box named `name` is running, or its main process (init)
// ended.
func waitRunning(ctx context.Context, name string, p *process) error {
	for {
		select {
		case <-p.done:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		out, err := cli(ctx, "inspect", "-f", "{{.State.Status}}", name)
		if err == nil {
			st := strings.TrimSpace(string(out))
			if st == "running" || st == "stopped" || st == "failed" {
				return nil
			}
		}
		select {
		case <-p.done:
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// exited publishes the exit of a process (after its output was flushed and its start
// was published).
func (s *service) exited(c *container, p *process) {
	<-p.announced
	_, pid, status, at := p.state()
	id := p.execID
	if id == "" {
		id = c.id
	}
	s.send(runtime.TaskExitEventTopic, &eventstypes.TaskExit{ContainerID: c.id, ID: id,
		Pid: uint32(pid), ExitStatus: status, ExitedAt: at})
}

// Delete removes an ended exec, or the task: its box (VM and disk), the imported rootfs
// image, the layout and the rootfs mount.
func (s *service) Delete(ctx context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	st, pid, status, at := p.state()
	if st == task.StatusRunning {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "process %s is still running: kill it first", describe(c, r.ExecID))
	}
	p.abandon()
	if r.ExecID != "" {
		s.mu.Lock()
		delete(c.execs, r.ExecID)
		s.mu.Unlock()
		return &taskAPI.DeleteResponse{Pid: uint32(pid), ExitStatus: status, ExitedAt: at}, nil
	}
	switch c.kind {
	case kindPause:
	case kindPodContainer:
		podContainerCleanup(ctx, c.box, c.rootDir, c.mountsDir)
	case kindPodSandbox:
		// The pod's box goes, and with it every container still in it.
		s.podEnded(c)
		if c.forwarder != nil {
			c.forwarder.Close(ctx)
		}
		cleanupPodMounts(ctx, podMountsDir(c.bundle)) // First: see manager.go's Stop.
		c.box.cleanup(ctx)
	default:
		c.box.cleanup(ctx)
	}
	s.mu.Lock()
	delete(s.containers, r.ID)
	s.mu.Unlock()
	s.send(runtime.TaskDeleteEventTopic, &eventstypes.TaskDelete{ContainerID: c.id, Pid: uint32(pid),
		ExitStatus: status, ExitedAt: at})
	return &taskAPI.DeleteResponse{Pid: uint32(pid), ExitStatus: status, ExitedAt: at}, nil
}

func describe(c *container, execID string) string {
	if execID == "" {
		return c.id
	}
	return c.id + "/" + execID
}

// Exec registers an exec process; Start runs it.
func (s *service) Exec(ctx context.Context, r *taskAPI.ExecProcessRequest) (*ptypes.Empty, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	v, err := typeurl.UnmarshalAny(r.Spec)
	if err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "the exec's process spec: %v", err)
	}
	spec, ok := v.(*specs.Process)
	if !ok || len(spec.Args) == 0 {
		return nil, errdefs.ToGRPCf(errdefs.ErrInvalidArgument, "the exec's process spec has no args")
	}
	s.mu.Lock()
	if _, ok := c.execs[r.ExecID]; ok {
		s.mu.Unlock()
		return nil, errdefs.ToGRPCf(errdefs.ErrAlreadyExists, "exec %s", r.ExecID)
	}
	c.execs[r.ExecID] = newProcess(r.ExecID, spec, stdio{r.Stdin, r.Stdout, r.Stderr, r.Terminal})
	s.mu.Unlock()
	s.send(runtime.TaskExecAddedEventTopic, &eventstypes.TaskExecAdded{ContainerID: c.id, ExecID: r.ExecID})
	return empty, nil
}

// ResizePty resizes the process's terminal; the CLI passes the new size into the box.
func (s *service) ResizePty(ctx context.Context, r *taskAPI.ResizePtyRequest) (*ptypes.Empty, error) {
	_, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if err := p.resize(r.Width, r.Height); err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrFailedPrecondition, "%v", err)
	}
	return empty, nil
}

// State reports a process.
func (s *service) State(ctx context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	st, pid, status, at := p.state()
	return &taskAPI.StateResponse{ID: r.ID, ExecID: r.ExecID, Bundle: c.bundle, Pid: uint32(pid),
		Status: st, Stdin: p.io.stdin, Stdout: p.io.stdout, Stderr: p.io.stderr,
		Terminal: p.io.terminal, ExitStatus: status, ExitedAt: at}, nil
}

// Pause is not offered: a box's memory snapshot is not a paused container.
func (s *service) Pause(ctx context.Context, r *taskAPI.PauseRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "boxlite tasks cannot be paused")
}

// Resume is not offered (see Pause).
func (s *service) Resume(ctx context.Context, r *taskAPI.ResumeRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "boxlite tasks cannot be paused or resumed")
}

// Kill signals a process. INT, TERM, HUP and QUIT reach the command in the box (the CLI
// forwards them); KILL of the main process removes the box at once (its VM ends, and
// every process in it), KILL of an exec ends its CLI.
func (s *service) Kill(ctx context.Context, r *taskAPI.KillRequest) (*ptypes.Empty, error) {
	c, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	sig := syscall.Signal(r.Signal)
	switch sig {
	case syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGKILL:
	default:
		return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented,
			"signal %d cannot be sent into a boxlite box: use INT, TERM, HUP, QUIT or KILL", r.Signal)
	}
	targets := []*process{p}
	if r.ExecID == "" && r.All {
		s.mu.Lock()
		for _, e := range c.execs {
			targets = append(targets, e)
		}
		s.mu.Unlock()
	}
	if r.ExecID == "" && sig == syscall.SIGKILL && c.kind == kindPodSandbox {
		s.podEnded(c)
	}
	// KILL of a box's main process (a task's own box, or a pod's) removes the box. KILL of
	// a pod container's process ends its CLI below: the agent then kills the process's
	// group in the pod's box, and the pod's other containers run on.
	if r.ExecID == "" && sig == syscall.SIGKILL && (c.kind == kindBox || c.kind == kindPodSandbox) {
		if st, _, _, _ := p.state(); st != task.StatusRunning {
			return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "process %s is not running", c.id)
		}
		for _, t := range targets {
			t.markForced(sig)
		}
		// A box still booting is removed once it is registered and runs: killing its CLI
		// earlier could orphan a VM the CLI was starting.
		if err := waitRunning(ctx, c.box.name, p); err != nil {
			return nil, err
		}
		if _, err := cli(ctx, "rm", "-f", c.box.name); err != nil {
			log.G(ctx).WithError(err).Warn("remove the box")
		}
		for _, t := range targets {
			_ = t.signal(sig)
		}
		return empty, nil
	}
	var first error
	for i, t := range targets {
		if err := t.signal(sig); err != nil && i == 0 {
			first = err
		}
	}
	if first != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrNotFound, "process %s: %v", describe(c, r.ExecID), first)
	}
	return empty, nil
}

// Pids lists the host processes of the task: the CLI of its main command and of each exec
// (the processes in the box have no host pid).
func (s *service) Pids(ctx context.Context, r *taskAPI.PidsRequest) (*taskAPI.PidsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	var out []*task.ProcessInfo
	s.mu.Lock()
	procs := []*process{c.init}
	for _, e := range c.execs {
		procs = append(procs, e)
	}
	s.mu.Unlock()
	for _, p := range procs {
		if st, pid, _, _ := p.state(); st == task.StatusRunning && pid > 0 {
			out = append(out, &task.ProcessInfo{Pid: uint32(pid)})
		}
	}
	return &taskAPI.PidsResponse{Processes: out}, nil
}

// CloseIO closes a process's stdin (the command in the box reads end-of-file).
func (s *service) CloseIO(ctx context.Context, r *taskAPI.CloseIORequest) (*ptypes.Empty, error) {
	_, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	if r.Stdin {
		p.closeStdin()
	}
	return empty, nil
}

// Checkpoint is not offered.
func (s *service) Checkpoint(ctx context.Context, r *taskAPI.CheckpointTaskRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "boxlite tasks cannot be checkpointed")
}

// Update is not offered: a box's vCPUs and memory are fixed when it boots.
func (s *service) Update(ctx context.Context, r *taskAPI.UpdateTaskRequest) (*ptypes.Empty, error) {
	return nil, errdefs.ToGRPCf(errdefs.ErrNotImplemented, "boxlite tasks cannot be updated: vCPUs and memory are fixed at boot")
}

// Wait returns once the process has ended.
func (s *service) Wait(ctx context.Context, r *taskAPI.WaitRequest) (*taskAPI.WaitResponse, error) {
	_, p, err := s.lookup(r.ID, r.ExecID)
	if err != nil {
		return nil, err
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	_, _, status, at := p.state()
	return &taskAPI.WaitResponse{ExitStatus: status, ExitedAt: at}, nil
}

// Connect reports the shim's pid and the task's (its main command's CLI).
func (s *service) Connect(ctx context.Context, r *taskAPI.ConnectRequest) (*taskAPI.ConnectResponse, error) {
	var pid int
	if c, err := s.get(r.ID); err == nil {
		_, pid, _, _ = c.init.state()
	}
	return &taskAPI.ConnectResponse{ShimPid: uint32(os.Getpid()), TaskPid: uint32(pid)}, nil
}

// Shutdown ends the shim once it serves no task.
func (s *service) Shutdown(ctx context.Context, r *taskAPI.ShutdownRequest) (*ptypes.Empty, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.containers) > 0 {
		return empty, nil
	}
	s.sd.Shutdown()
	return empty, nil
}

// boxStats is the part of `boxlite stats --format json` the shim reports
// (src/cli/box_cmds.cc, MetricsJson).
type boxStats struct {
	CPUSeconds      *float64 `json:"cpu_seconds"`
	MemoryRSSBytes  *uint64  `json:"memory_rss_bytes"`
	GuestMemoryUsed *uint64  `json:"guest_memory_used_bytes"`
}

// Stats reports the box's CPU time and memory as cgroup v1 metrics (what `ctr task
// metrics` and the CRI decode), from `boxlite stats`.
func (s *service) Stats(ctx context.Context, r *taskAPI.StatsRequest) (*taskAPI.StatsResponse, error) {
	c, err := s.get(r.ID)
	if err != nil {
		return nil, err
	}
	m := &cgroupsv1.Metrics{CPU: &cgroupsv1.CPUStat{Usage: &cgroupsv1.CPUUsage{}},
		Memory: &cgroupsv1.MemoryStat{Usage: &cgroupsv1.MemoryEntry{}}}
	if c.sandbox {
		return marshalStats(m) // No box: nothing used.
	}
	out, err := cli(ctx, "stats", "--format", "json", c.box.name)
	if err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrUnavailable, "%v", err)
	}
	var bs boxStats
	if err := json.Unmarshal(out, &bs); err != nil {
		return nil, errdefs.ToGRPCf(errdefs.ErrUnavailable, "boxlite stats: %v", err)
	}
	if bs.CPUSeconds != nil && *bs.CPUSeconds > 0 {
		m.CPU.Usage.Total = uint64(*bs.CPUSeconds * 1e9)
	}
	// The guest's own count of used memory when it reports one, else the VM's RSS.
	if bs.GuestMemoryUsed != nil && *bs.GuestMemoryUsed > 0 {
		m.Memory.Usage.Usage = *bs.GuestMemoryUsed
	} else if bs.MemoryRSSBytes != nil {
		m.Memory.Usage.Usage = *bs.MemoryRSSBytes
	}
	return marshalStats(m)
}

func marshalStats(m *cgroupsv1.Metrics) (*taskAPI.StatsResponse, error) {
	data, err := typeurl.MarshalAny(m)
	if err != nil {
		return nil, err
	}
	return &taskAPI.StatsResponse{Stats: data}, nil
}
