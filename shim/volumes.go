// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

// A pod container's volumes (docs/kubernetes.md, "Volumes"). A box's 9p shares are fixed
// when it boots, and the pod's box boots before its containers are known; so the box
// boots with one share of a per-pod host directory (podMountsDir), a mount point of its
// own, and each container's bind mounts of config.json are bound
// under it on the host at the container's Create: <dir>/<container>/<n>, the source
// itself (live: the host's later writes, a refreshed token, are seen; the container's
// writes reach the source), read-only when the mount says ro. QEMU sees them although
// they come after it started: its share is a descriptor opened on the host, looked up
// through the host's mount table (src/sys/jail_test.cc), and it keeps inode numbers
// apart across them (multidevs=remap, src/vmm/qemu.cc). The agent binds
// <podMountsGuest>/<container>/<n> onto the mount's destination in the container's root
// for every process of the container (`boxlite exec --container-mount`,
// agent/container_root.h). Delete unmounts them.

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/containerd/containerd/log"
	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// podMountsName is the pod's volume directory in its sandbox task's bundle (containerd
// removes the bundle after Delete, which unmounts everything beneath it first).
const podMountsName = "boxlite-pod-mounts"

// podMountsGuest is where the pod's box mounts that directory.
const podMountsGuest = "/var/lib/boxlite/pod-mounts"

// podVMUser is the host user QEMU runs as for a box started by root (src/sys/jail.h,
// kJailUser): a read-write share must be its, and it opens every file of the volumes.
const podVMUser = "boxlite"

func podMountsDir(sandboxBundle string) string {
	return filepath.Join(sandboxBundle, podMountsName)
}

// providedByBox: destinations the box makes itself for every container (the agent's
// /proc, /sys and the box's /dev with its pts, shm and mqueue), never bound from the host.
func providedByBox(dst string) bool {
	dst = path.Clean(dst)
	for _, p := range []string{"/proc", "/sys", "/dev"} {
		if dst == p || strings.HasPrefix(dst, p+"/") {
			return true
		}
	}
	return false
}

// podVolumesEnabled: off. The pod's volume directory is a read-write share of the box,
// so the guest can rename and replace the per-container directories beneath it while the
// shim (root) makes, binds, unmounts and removes paths through them: a planted symlink
// would turn those into binds and removals anywhere on the host. Until every step goes
// through descriptors opened with O_NOFOLLOW beneath the pod directory (and a VM test
// plants the links), a pod container's bind mounts are skipped, as they were before.
const podVolumesEnabled = false

// preparePodMounts makes the pod's volume directory: owned by the VM's user (a read-write
// share must be) and bound onto itself, so the host's binds under it are one tree that
// cleanupPodMounts detaches at once. No shared propagation is needed: QEMU reaches the
// binds through its share's descriptor, in the host's mount table.
func preparePodMounts(dir string) error {
	u, err := user.Lookup(podVMUser)
	if err != nil {
		return fmt.Errorf("the system user %q that runs a pod's VM is missing: run "+
			"scripts/setup.sh, or useradd --system --user-group --no-create-home "+
			"--shell /usr/sbin/nologin %s", podVMUser, podVMUser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("make the pod's volume directory: %w", err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return fmt.Errorf("give the pod's volume directory to %s: %w", podVMUser, err)
	}
	if mounted, _ := mountinfo.Mounted(dir); !mounted {
		if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind the pod's volume directory onto itself: %w", err)
		}
	}
	return nil
}

// countPodVolumes: how many of the spec's mounts mountPodVolumes would bind.
func countPodVolumes(s *specs.Spec) int {
	n := 0
	for _, m := range s.Mounts {
		if isBindMount(m) && !providedByBox(m.Destination) {
			n++
		}
	}
	return n
}

// isBindMount: a bind mount of config.json (type bind, or a bind/rbind option).
func isBindMount(m specs.Mount) bool {
	return m.Type == "bind" || hasOption(m.Options, "bind") || hasOption(m.Options, "rbind")
}

// mountPodVolumes binds the container's bind mounts under dir/<container>/<n> and returns
// the `boxlite exec --container-mount` flags naming them in the box. A source that is
// neither a directory nor a regular file (a socket, a device) is skipped and logged:
// 9p does not carry it. On error, what was bound stays for unmountPodVolumes.
func mountPodVolumes(ctx context.Context, dir, id string, s *specs.Spec) ([]string, error) {
	name := safeName(id)
	base := filepath.Join(dir, name)
	var flags []string
	for i, m := range s.Mounts {
		if !isBindMount(m) || providedByBox(m.Destination) {
			continue
		}
		if !filepath.IsAbs(m.Source) || !path.IsAbs(m.Destination) {
			return nil, fmt.Errorf("mount %s on %s: both paths must be absolute", m.Source,
				m.Destination)
		}
		st, err := os.Stat(m.Source)
		if err != nil {
			return nil, fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
		if !st.IsDir() && !st.Mode().IsRegular() {
			log.G(ctx).Warnf("mount %s on %s: not a directory or a regular file; a box "+
				"cannot share it, skipped", m.Source, m.Destination)
			continue
		}
		if err := os.MkdirAll(base, 0o755); err != nil {
			return nil, err
		}
		n := strconv.Itoa(i)
		target := filepath.Join(base, n)
		if st.IsDir() {
			err = os.Mkdir(target, 0o755)
		} else {
			var f *os.File
			if f, err = os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644); err == nil {
				f.Close()
			}
		}
		if err != nil && !os.IsExist(err) {
			return nil, fmt.Errorf("make the mount point of %s: %w", m.Destination, err)
		}
		flag := unix.MS_BIND
		if hasOption(m.Options, "rbind") || !hasOption(m.Options, "bind") {
			flag |= unix.MS_REC // Kubernetes' volumes are rbind; type bind alone too (runc).
		}
		if err := unix.Mount(m.Source, target, "", uintptr(flag), ""); err != nil {
			return nil, fmt.Errorf("bind %s for %s: %w", m.Source, m.Destination, err)
		}
		ro := hasOption(m.Options, "ro")
		if ro {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return nil, fmt.Errorf("make %s read-only: %w", m.Destination, err)
			}
		}
		spec := podMountsGuest + "/" + name + "/" + n + ":" + m.Destination
		if ro {
			spec += ":ro"
		}
		flags = append(flags, "--container-mount", spec)
	}
	return flags, nil
}

// unmountUnder detaches every mount at or beneath `root`, deepest first.
func unmountUnder(ctx context.Context, root string) {
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(root))
	if err != nil {
		log.G(ctx).WithError(err).Warn("read the mount table")
	}
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i].Mountpoint) > len(mounts[j].Mountpoint) })
	for _, m := range mounts {
		if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH); err != nil && err != unix.EINVAL {
			log.G(ctx).WithError(err).Warnf("unmount %s", m.Mountpoint)
		}
	}
}

// removeMountPoints removes dir/<container>: its mount points (empty once unmounted) and
// itself.
func removeMountPoints(ctx context.Context, base string) {
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(base, e.Name())); err != nil {
			log.G(ctx).WithError(err).Warn("remove a volume's mount point")
		}
	}
	os.Remove(base)
}

// unmountPodVolumes undoes mountPodVolumes for container `id`.
func unmountPodVolumes(ctx context.Context, dir, id string) {
	base := filepath.Join(dir, safeName(id))
	unmountUnder(ctx, base)
	removeMountPoints(ctx, base)
}

// cleanupPodMounts removes the pod's volume directory: every container's binds, then its
// own bind.
func cleanupPodMounts(ctx context.Context, dir string) {
	if _, err := os.Lstat(dir); err != nil {
		return
	}
	unmountUnder(ctx, dir)
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.IsDir() {
			removeMountPoints(ctx, filepath.Join(dir, e.Name()))
		}
	}
	if err := os.Remove(dir); err != nil {
		log.G(ctx).WithError(err).Warn("remove the pod's volume directory")
	}
}
