// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

// One box per pod (docs/kubernetes.md, "Pods"): containerd starts a shim per task, and the
// shim's `start` answers the address of the shim already serving the task's pod (grouped by
// the CRI annotation io.kubernetes.cri.sandbox-id, as runc's v2 shim groups them). The
// pod's sandbox task boots the pod's box from BoxLite's base image with a keeper process;
// each container of the pod is a directory of that box holding the container's image, and
// its processes run in the box chrooted there (`boxlite exec --rootfs-dir`).

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/log"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// The CRI annotation naming a task's pod: the sandbox task's own id.
const criSandboxID = "io.kubernetes.cri.sandbox-id"

// CRI annotations of the pod's resources on the sandbox task (containerd 1.7 and later
// set them; the sandbox's linux.resources is used when present).
const (
	criSandboxCPUQuota  = "io.kubernetes.cri.sandbox-cpu-quota"
	criSandboxCPUPeriod = "io.kubernetes.cri.sandbox-cpu-period"
	criSandboxMemory    = "io.kubernetes.cri.sandbox-memory"
)

// podImage is the image the pod's box boots (BoxLite's built-in base: a shell and tar
// for the copy of the containers' roots); podKeeper is its main command.
const podImage = "boxlite/base"

var podKeeper = []string{"sleep", "infinity"}

// podRootsDir is where the containers' roots live in the pod's box (on its disk).
const podRootsDir = "/var/lib/boxlite/containers"

// The kinds of task.
type taskKind int

const (
	kindBox          taskKind = iota // A task of its own: one box (no pod annotations).
	kindPause                        // A sandbox task without a pod id: a host placeholder.
	kindPodSandbox                   // A pod's sandbox: boots the pod's box.
	kindPodContainer                 // A container of a pod: runs in the pod's box.
)

// kindOf tells a task's kind from its config.json annotations, and its pod's id.
func kindOf(s *specs.Spec) (taskKind, string) {
	pod := s.Annotations[criSandboxID]
	switch s.Annotations[criContainerType] {
	case "sandbox":
		if pod == "" {
			return kindPause, ""
		}
		return kindPodSandbox, pod
	case "container":
		if pod != "" {
			return kindPodContainer, pod
		}
	}
	return kindBox, ""
}

// groupOf is the shim grouping of a bundle: the pod's id when config.json names one, else
// the task's own id (one shim per task).
func groupOf(bundle, id string) string {
	s, err := readSpec(bundle)
	if err != nil {
		return id
	}
	if _, pod := kindOf(s); pod != "" {
		return pod
	}
	return id
}

var safeIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// safeName is container `id` as one path component: itself, or a hash of it.
func safeName(id string) string {
	if !safeIDRe.MatchString(id) {
		sum := sha256.Sum256([]byte(id))
		id = "h-" + hex.EncodeToString(sum[:16])
	}
	return id
}

// containerRoot is the directory of container `id` in its pod's box.
func containerRoot(id string) string {
	return podRootsDir + "/" + safeName(id) + "/rootfs"
}

// podBoxFlags are the pod box's resources: the sandbox's own limits (boxFlags), else the
// CRI's pod annotations.
func podBoxFlags(s *specs.Spec) []string {
	args := boxFlags(s)
	has := func(flag string) bool {
		for _, a := range args {
			if a == flag {
				return true
			}
		}
		return false
	}
	quota, qerr := strconv.ParseInt(s.Annotations[criSandboxCPUQuota], 10, 64)
	period, perr := strconv.ParseInt(s.Annotations[criSandboxCPUPeriod], 10, 64)
	if !has("--cpus") && qerr == nil && perr == nil && quota > 0 && period > 0 {
		cpus := (quota + period - 1) / period
		if cpus > maxCpus {
			cpus = maxCpus
		}
		args = append(args, "--cpus", strconv.FormatInt(cpus, 10))
	}
	mem, merr := strconv.ParseInt(s.Annotations[criSandboxMemory], 10, 64)
	if !has("--memory") && merr == nil && mem > 0 {
		mib := (mem + (1 << 20) - 1) >> 20
		if mib < minMemoryMiB {
			mib = minMemoryMiB
		} else if mib > maxMemoryMiB {
			mib = maxMemoryMiB
		}
		args = append(args, "--memory", strconv.FormatInt(mib, 10))
	}
	return args
}

// diskSizeAnnotation sizes the pod's box's writable disk (`boxlite run --disk-size`): the
// containers' roots live there, each unpacked beside a copy of its archive.
const diskSizeAnnotation = "boxlite.dev/disk-size"

var diskSizeRe = regexp.MustCompile(`^[1-9][0-9]{0,6}(M|MiB|G|GiB)?$`)

// podDiskFlags maps the pod's disk-size annotation onto --disk-size.
func podDiskFlags(s *specs.Spec) ([]string, error) {
	v := strings.TrimSpace(s.Annotations[diskSizeAnnotation])
	if v == "" {
		return nil, nil
	}
	if !diskSizeRe.MatchString(v) {
		return nil, fmt.Errorf("annotation %s: %q is not a size: write GiB as a number, or "+
			"N with M, MiB, G or GiB (20G)", diskSizeAnnotation, v)
	}
	return []string{"--disk-size", v}, nil
}

// maxClientsAnnotation sizes how many processes the pod's box serves at once (`boxlite run
// --max-clients`): each running process of the pod's containers (main ones and execs)
// and each short command of the shim (a container's copy-in and removal) holds one until
// it ends. Without it, defaultPodClients.
const maxClientsAnnotation = "boxlite.dev/max-clients"

// defaultPodClients: the keeper, the shim's short commands and a few containers' processes
// with their probes; each more costs the pod's guest about 4.3 MiB of kernel memory
// (docs/kubernetes.md, "A pod's processes and each container's limits").
const defaultPodClients = 8

// Bounds of --max-clients (include/boxlite/options.h: kMinMaxClients, kMaxMaxClients).
const (
	minPodClients = 1
	maxPodClients = 30
)

// podClientFlags maps the pod's max-clients annotation onto --max-clients.
func podClientFlags(s *specs.Spec) ([]string, error) {
	v := strings.TrimSpace(s.Annotations[maxClientsAnnotation])
	if v == "" {
		return []string{"--max-clients", strconv.Itoa(defaultPodClients)}, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < minPodClients || n > maxPodClients {
		return nil, fmt.Errorf("annotation %s: %q is not a number from %d to %d: it is how many "+
			"processes of the pod (main ones, execs, probes) run at once", maxClientsAnnotation, v,
			minPodClients, maxPodClients)
	}
	return []string{"--max-clients", strconv.Itoa(n)}, nil
}

// containerLimitFlags are the flags of `boxlite exec` giving one process of a pod
// container the container's own limits (docs/kubernetes.md, "Limits"): its process's
// rlimits (`spec`: the main process's or an exec's), and linux.resources through the
// container's cgroup in the pod's box, which every process of the container joins:
// memory.limit as memory.max (rounded up to MiB), the CPU quota and period as cpu.max (or
// cpu.weight: the agent's choice on a kernel without cpu.max),
// pids.limit as pids.max. Values beyond the CLI's bounds are brought within them.
func containerLimitFlags(c *container, spec *specs.Process) []string {
	var args []string
	if spec != nil {
		for _, r := range spec.Rlimits {
			if name, ok := ulimitNames[r.Type]; ok {
				soft := r.Soft
				if name == "nofile" && soft > maxNofile {
					soft = maxNofile
				}
				args = append(args, "--ulimit", name+"="+strconv.FormatUint(soft, 10))
			}
		}
	}
	args = append(args, "--cgroup-name", safeName(c.id))
	if c.spec.Linux == nil || c.spec.Linux.Resources == nil {
		return args
	}
	r := c.spec.Linux.Resources
	if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
		mib := (*r.Memory.Limit + (1 << 20) - 1) >> 20
		if mib < minCgroupMiB {
			mib = minCgroupMiB
		}
		args = append(args, "--memory", strconv.FormatInt(mib, 10))
	}
	if r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota > 0 {
		quota := *r.CPU.Quota
		if quota < minCPUQuota {
			quota = minCPUQuota
		}
		args = append(args, "--cpu-quota", strconv.FormatInt(quota, 10))
		if r.CPU.Period != nil && *r.CPU.Period > 0 {
			period := *r.CPU.Period
			if period < minCPUPeriod {
				period = minCPUPeriod
			} else if period > maxCPUPeriod {
				period = maxCPUPeriod
			}
			args = append(args, "--cpu-period", strconv.FormatUint(period, 10))
		}
	}
	if r.Pids != nil && r.Pids.Limit > 0 {
		pids := r.Pids.Limit
		if pids > maxPids {
			pids = maxPids
		}
		args = append(args, "--pids-limit", strconv.FormatInt(pids, 10))
	}
	return args
}

// Bounds of `boxlite exec`'s cgroup flags (src/protocol/messages.h, ValidateExecCgroup).
const (
	minCgroupMiB = 4
	minCPUQuota  = 1000
	minCPUPeriod = 1000
	maxCPUPeriod = 1000000
	maxPids      = 4194304
	maxNofile    = 1 << 20 // The guest's fs.nr_open.
)

// podPublishFlags publishes, on the pod's box, every port the pod's annotations name:
// boxlite.dev/publish and each boxlite.dev/publish.NAME (one box serves all containers).
func podPublishFlags(s *specs.Spec) ([]string, error) {
	var args []string
	seen := map[string]bool{}
	var keys []string
	for key := range s.Annotations {
		if key == publishAnnotation || strings.HasPrefix(key, publishAnnotation+".") {
			keys = append(keys, key)
		}
	}
	sort.Strings(keys)
	for _, key := range keys {
		flags, err := portFlags(key, s.Annotations[key])
		if err != nil {
			return nil, err
		}
		for i := 1; i < len(flags); i += 2 {
			if !seen[flags[i]] {
				seen[flags[i]] = true
				args = append(args, "-p", flags[i])
			}
		}
	}
	return args, nil
}

// podRunArgs is the `boxlite run` of a pod's sandbox task: the pod's box and its keeper.
func podRunArgs(c *container) ([]string, error) {
	args := []string{"run", "--name", c.box.name}
	args = append(args, podBoxFlags(c.spec)...)
	publish, err := podPublishFlags(c.spec)
	if err != nil {
		return nil, err
	}
	args = append(args, publish...)
	disk, err := podDiskFlags(c.spec)
	if err != nil {
		return nil, err
	}
	args = append(args, disk...)
	clients, err := podClientFlags(c.spec)
	if err != nil {
		return nil, err
	}
	args = append(args, clients...)
	// The pod's volumes (volumes.go): made on the host under this share as containers come.
	args = append(args, "-v", podMountsDir(c.bundle)+":"+podMountsGuest)
	args = append(args, podImage)
	return append(args, podKeeper...), nil
}

// copyRootfs copies the container's rootfs (the bundle's, mounted) into its directory in
// the pod's box: containerd's tar writer streams it into the stdin of one exec in the box,
// which writes it to a file beside the root and unpacks it there (owners, modes, links
// and devices kept), then removes the file. Unpacking from a file, not from the pipe:
// the base image's tar reads a pipe in small pieces, three times slower under TCG
// (docs/kubernetes.md, "Pods"). A directory left by an earlier container of that id is
// replaced.
func copyRootfs(ctx context.Context, podBox, rootfs, root string) error {
	script := `set -e; d="$(dirname "$1")"; rm -rf "$d"; mkdir -p "$1"; cat > "$d/rootfs.tar"; ` +
		`tar -x -f "$d/rootfs.tar" -C "$1"; rm -f "$d/rootfs.tar"`
	cmd := exec.CommandContext(ctx, cliPath(), "exec", "-i", podBox, "--", "sh", "-c", script,
		"sh", root)
	cmd.Env = cliEnv()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	if err := cmd.Start(); err != nil {
		return err
	}
	werr := archive.WriteDiff(ctx, stdin, "", rootfs)
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("copy the rootfs into the pod's box: %w: %s", err,
			strings.TrimSpace(out.String()))
	}
	if werr != nil && werr != io.ErrClosedPipe {
		return fmt.Errorf("archive the container's rootfs: %w", werr)
	}
	return nil
}

// removeContainerRoot removes the container's directory (its root) from the pod's box.
// The root holds no mount: the agent mounts /proc, /sys and /dev for each process in a
// mount namespace of its own (agent/container_root.h).
func removeContainerRoot(ctx context.Context, podBox, root string) error {
	_, err := cli(ctx, "exec", podBox, "--", "rm", "-rf", path.Dir(root))
	return err
}

// podContainerCleanup removes a pod container: its volumes (volumes.go), under
// mountsDir, unmounted on the host first (quick, and containerd bounds a dead shim's
// cleanup in time), its root in the pod's box (when the box still runs) and the bundle's
// rootfs mount. Its processes ended with their CLIs: when the `boxlite exec` of a
// process ends, the agent kills the process's group.
func podContainerCleanup(ctx context.Context, b *box, root, mountsDir string) {
	unmountPodVolumes(ctx, mountsDir, b.id)
	if err := removeContainerRoot(ctx, b.name, root); err != nil {
		log.G(ctx).WithError(err).Debug("remove the container's root from the pod's box")
	}
	b.unmountRootfs(ctx)
}

// podContainerBox is the box of a pod container: the bundle's files are the
// container's, the box (its name) is the pod's, named after the sandbox task.
func podContainerBox(ns, id, pod, bundle string) *box {
	b := newBox(ns, id, bundle)
	b.name = newBox(ns, pod, bundle).name
	return b
}

// portFlags maps one publish annotation's value onto -p flags.
func portFlags(key, value string) ([]string, error) {
	value = strings.TrimSpace(value)
	if value == "" {
		return nil, nil
	}
	var args []string
	for _, item := range strings.Split(value, ",") {
		port, err := strconv.ParseUint(strings.TrimSpace(item), 10, 16)
		if err != nil || port == 0 {
			return nil, fmt.Errorf("annotation %s: %q is not a port (1-65535): write PORT[,PORT...]",
				key, item)
		}
		p := strconv.FormatUint(port, 10)
		args = append(args, "-p", "0.0.0.0:"+p+":"+p)
	}
	return args, nil
}
