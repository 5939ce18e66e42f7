// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/runtime/v2/shim"
)

// manager starts one shim process per task (`shim start`) and cleans up after a shim that
// died (`shim delete`, run by containerd in the task's bundle directory).
type manager struct{}

func newManager() shim.Manager { return manager{} }

func (manager) Name() string { return runtimeName }

// Start re-executes this binary as the long-lived shim serving the task's ttrpc socket
// and prints the socket's address, as containerd's runc shim does (one shim per task).
func (manager) Start(ctx context.Context, id string, opts shim.StartOpts) (_ string, retErr error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return "", err
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	// One shim per pod: the tasks of a pod (CRI's sandbox-id) share the shim of their
	// sandbox task, whose socket address is derived from the pod's id (pod.go).
	address, err := shim.SocketAddress(ctx, opts.Address, groupOf(cwd, id))
	if err != nil {
		return "", err
	}
	socket, err := shim.NewSocket(address)
	if err != nil {
		if !shim.SocketEaddrinuse(err) {
			return "", fmt.Errorf("create the shim socket: %w", err)
		}
		if shim.CanConnect(address) {
			if err := shim.WriteAddress("address", address); err != nil {
				return "", err
			}
			return address, nil
		}
		if err := shim.RemoveSocket(address); err != nil {
			return "", fmt.Errorf("remove a stale shim socket: %w", err)
		}
		if socket, err = shim.NewSocket(address); err != nil {
			return "", fmt.Errorf("create the shim socket: %w", err)
		}
	}
	defer func() {
		if retErr != nil {
			socket.Close()
			_ = shim.RemoveSocket(address)
		}
	}()
	if err := shim.WriteAddress("address", address); err != nil {
		return "", err
	}
	f, err := socket.File()
	if err != nil {
		return "", err
	}
	defer f.Close()
	args := []string{"-namespace", ns, "-id", id, "-address", opts.Address}
	if opts.Debug {
		args = append(args, "-debug")
	}
	cmd := exec.Command(self, args...)
	cmd.Dir = cwd
	cmd.Env = os.Environ()
	cmd.ExtraFiles = []*os.File{f}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return "", err
	}
	go cmd.Wait() //nolint:errcheck // The shim outlives this process; nothing to report.
	if err := shim.AdjustOOMScore(cmd.Process.Pid); err != nil {
		log.G(ctx).WithError(err).Warn("adjust the shim's OOM score")
	}
	return address, nil
}

// Stop is `shim delete`: the shim of task `id` is gone (it died, or Start failed), so
// remove what it left: the box (VM included), its imported rootfs image and the rootfs
// mount. containerd runs it in the bundle directory.
func (manager) Stop(ctx context.Context, id string) (shim.StopStatus, error) {
	ns, err := namespaces.NamespaceRequired(ctx)
	if err != nil {
		return shim.StopStatus{}, err
	}
	bundle, err := os.Getwd()
	if err != nil {
		return shim.StopStatus{}, err
	}
	address, addrErr := shim.ReadAddress(bundlePath(bundle, "address"))
	if spec, err := readSpec(bundle); err == nil {
		if kind, pod := kindOf(spec); kind == kindPodContainer || kind == kindPodSandbox {
			// containerd runs this for every task whose connection closed, also a task it
			// deleted from a pod's shim that lives on: that shim removed what the task had
			// and serves the others, its socket stays.
			if addrErr == nil && shim.CanConnect(address) {
				return shim.StopStatus{ExitedAt: time.Now(), ExitStatus: 128 + int(syscall.SIGKILL)}, nil
			}
			if addrErr == nil {
				_ = shim.RemoveSocket(address)
			}
			if kind == kindPodContainer {
				// The pod's box may still run (its sandbox's shim delete removes it).
				// Its pod's volume directory is beside the sandbox's bundle, as this one is.
				podContainerCleanup(ctx, podContainerBox(ns, id, pod, bundle), containerRoot(id),
					podMountsDir(filepath.Join(filepath.Dir(bundle), pod)))
			} else {
				// The volumes first (quick): containerd kills this after 5 s, and the
				// VM's removal can take longer (volumes.go).
				cleanupPodMounts(ctx, podMountsDir(bundle))
				newBox(ns, id, bundle).cleanup(ctx) // The pod's box (no layout tells it went).
			}
			return shim.StopStatus{ExitedAt: time.Now(), ExitStatus: 128 + int(syscall.SIGKILL)}, nil
		}
	}
	// The dead shim's socket: containerd does not remove it.
	if addrErr == nil {
		if err := shim.RemoveSocket(address); err != nil {
			log.G(ctx).WithError(err).Warn("remove the shim's socket")
		}
	}
	b := newBox(ns, id, bundle)
	if b.cleanedUp() {
		b.unmountRootfs(ctx) // Delete ran; a mount may remain if Create failed early.
	} else {
		b.cleanup(ctx)
	}
	return shim.StopStatus{
		ExitedAt:   time.Now(),
		ExitStatus: 128 + int(syscall.SIGKILL),
	}, nil
}

// bundlePath joins a name under the bundle (kept in one place for the files we write).
func bundlePath(bundle, name string) string { return filepath.Join(bundle, name) }
