// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

// containerd-shim-boxlite-v2: BoxLite as a containerd runtime (shim v2), selected by
// `--runtime io.containerd.boxlite.v2` or a Kubernetes RuntimeClass. Every task is one
// BoxLite box (a micro-VM) booted from the task's OCI bundle; its processes are driven
// through the `boxlite` CLI (docs/kubernetes.md says why Go and why the CLI).
//
// containerd's own shim library (runtime/v2/shim) provides the ttrpc server, the
// start/delete protocol and event publishing; this package provides the manager (start a
// shim, clean up after a dead one: manager.go) and the Task service (service.go).
package main

import (
	"context"

	"github.com/containerd/containerd/pkg/shutdown"
	"github.com/containerd/containerd/plugin"
	"github.com/containerd/containerd/runtime/v2/shim"
)

const runtimeName = "io.containerd.boxlite.v2"

func main() {
	plugin.Register(&plugin.Registration{
		Type:     plugin.TTRPCPlugin,
		ID:       "task",
		Requires: []plugin.Type{plugin.EventPlugin, plugin.InternalPlugin},
		InitFn: func(ic *plugin.InitContext) (interface{}, error) {
			pp, err := ic.GetByID(plugin.EventPlugin, "publisher")
			if err != nil {
				return nil, err
			}
			ss, err := ic.GetByID(plugin.InternalPlugin, "shutdown")
			if err != nil {
				return nil, err
			}
			return newTaskService(ic.Context, pp.(shim.Publisher), ss.(shutdown.Service)), nil
		},
	})
	// The shim waits for its own children (exec.Cmd.Wait): no global reaper stealing their
	// exit statuses, and no subreaper adopting the VMs the CLI leaves running.
	shim.RunManager(context.Background(), newManager(), func(c *shim.Config) {
		c.NoReaper = true
		c.NoSubreaper = true
	})
}
