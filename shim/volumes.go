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
	"io"
	"os"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/containerd/log"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// podMountsPrefix names the pod's volume directory: beside its sandbox task's bundle,
// .pod-mounts@POD, not in it. containerd removes a bundle with os.RemoveAll after
// unmounting its rootfs alone, and a bind left there (a dead shim's cleanup cut short by
// containerd's timeout) would have its files deleted; it never removes nor loads a
// hidden entry of its task state, and no bundle's temporary name (.ID) has an '@'.
const podMountsPrefix = ".pod-mounts@"

// podMountsGuest is where the pod's box mounts that directory.
const podMountsGuest = "/var/lib/boxlite/pod-mounts"

// podVMUser is the host user QEMU runs as for a box started by root (src/sys/jail.h,
// kJailUser): a read-write share must be its, and it opens every file of the volumes.
const podVMUser = "boxlite"

func podMountsDir(sandboxBundle string) string {
	return filepath.Join(filepath.Dir(sandboxBundle), podMountsPrefix+filepath.Base(sandboxBundle))
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

// A pod's volume directory and what the shim makes in it are the host's structure, which
// the guest must not change: the directory is a read-write share of the box, served by
// QEMU as podVMUser (9p security_model=none), so it, every container's directory and
// every mount point in them are root's, mode 0755, and only the bound sources are
// writable (as their own owners and modes allow). The runtime boots a box only with
// read-write shares its VM user can write (the check for `boxlite run -v`,
// src/vmm/vm_jail.cc), so the directory is podVMUser's while the box boots, when only
// BoxLite's keeper runs in it, and sealPodMounts gives it to root before the first
// container's files reach the box, refusing a directory that gained anything meanwhile.
//
// Every step beneath the directory goes through descriptors and follows no link: a
// directory is opened with O_NOFOLLOW and checked (root's and writable by no one else,
// on its parent's file system, a container's not a mount), mount points are made with
// mkdirat/openat beneath their directory's descriptor, bound and unmounted through
// /proc/self/fd/N of an O_PATH|O_NOFOLLOW descriptor (the kernel resolves that link to
// exactly the checked file; UMOUNT_NOFOLLOW would refuse to follow it) and removed with
// unlinkat on their parent's descriptor. Anything else there (a link, another owner, a
// mount the shim did not make) is refused, logged and left.

// maxStackedMounts bounds the unmounts of one mount point (the shim binds once).
const maxStackedMounts = 8

// dirFd is a directory opened without following a link, and what it was when opened.
type dirFd struct {
	f  *os.File
	fd int
	st unix.Statx_t
}

func (d *dirFd) Close() { d.f.Close() }

// procFd names what descriptor fd is, for mount(2) and umount2(2).
func procFd(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// statFd: the type, mode, owner, device and mount of what fd (O_PATH too) is.
func statFd(fd int) (unix.Statx_t, error) {
	var st unix.Statx_t
	err := unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW,
		unix.STATX_TYPE|unix.STATX_MODE|unix.STATX_UID|unix.STATX_MNT_ID, &st)
	if err == nil && st.Mask&unix.STATX_MNT_ID == 0 {
		err = fmt.Errorf("the kernel tells no mount ids (statx STATX_MNT_ID needs Linux 5.8)")
	}
	return st, err
}

func fileType(st unix.Statx_t) uint32 { return uint32(st.Mode) & unix.S_IFMT }

// rootsOwn: owned by root and writable by no one else.
func rootsOwn(st unix.Statx_t) bool { return st.Uid == 0 && st.Mode&0o022 == 0 }

func sameDevice(a, b unix.Statx_t) bool {
	return a.Dev_major == b.Dev_major && a.Dev_minor == b.Dev_minor
}

// openDirAt opens directory `name` beneath dirfd (or a path, with unix.AT_FDCWD) without
// following a link in its last component. A missing directory is os.IsNotExist.
func openDirAt(dirfd int, name string) (*dirFd, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ELOOP || err == unix.ENOTDIR {
		return nil, fmt.Errorf("%s is not a directory (a link?): refused", name)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: name, Err: err}
	}
	d := &dirFd{f: os.NewFile(uintptr(fd), name), fd: fd}
	if d.st, err = statFd(fd); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// openOwnDir opens a directory the shim made beneath `parent`: root's, writable by no one
// else, and no mount (of something else) on it.
func openOwnDir(parent *dirFd, name string) (*dirFd, error) {
	d, err := openDirAt(parent.fd, name)
	if err != nil {
		return nil, err
	}
	if !rootsOwn(d.st) || d.st.Mnt_id != parent.st.Mnt_id {
		d.Close()
		return nil, fmt.Errorf("%s is not the directory BoxLite made (owner %d, mode %o, or a "+
			"mount on it): refused", name, d.st.Uid, d.st.Mode&0o7777)
	}
	return d, nil
}

// vmUserIDs: the uid and gid of podVMUser.
func vmUserIDs() (int, int, error) {
	u, err := user.Lookup(podVMUser)
	if err != nil {
		return 0, 0, fmt.Errorf("the system user %q that runs a pod's VM is missing: run "+
			"scripts/setup.sh, or useradd --system --user-group --no-create-home "+
			"--shell /usr/sbin/nologin %s", podVMUser, podVMUser)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

// podDir is a pod's volume directory, open, and its parent (containerd's task state of
// the pod's namespace).
type podDir struct {
	parent, dir *dirFd
	name        string
	sealed      bool // Root's (sealPodMounts ran); else podVMUser's (the box boots).
}

func (p *podDir) Close() {
	p.dir.Close()
	p.parent.Close()
}

// openPodDir opens the pod's volume directory `dir` (beside the sandbox's bundle, in
// containerd's task state) without following a link: a directory on its parent's file
// system (a bind of itself, not something else mounted there), sealed or podVMUser's.
// Until Close, the parent is locked (flock): a dead shim's cleanup runs one `shim delete`
// per task at once, the sandbox's removing what its containers' also remove.
func openPodDir(dir string) (*podDir, error) {
	parent, err := openDirAt(unix.AT_FDCWD, filepath.Dir(dir))
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(parent.fd, unix.LOCK_EX); err != nil {
		parent.Close()
		return nil, fmt.Errorf("lock %s: %w", filepath.Dir(dir), err)
	}
	p := &podDir{parent: parent, name: filepath.Base(dir)}
	if p.dir, err = openDirAt(parent.fd, p.name); err != nil {
		parent.Close()
		return nil, err
	}
	st := p.dir.st
	vmUID, _, uerr := vmUserIDs()
	switch {
	case !sameDevice(st, parent.st):
		err = fmt.Errorf("%s is not on its parent's file system (something is mounted "+
			"there): refused", dir)
	case rootsOwn(st):
		p.sealed = true
	case uerr == nil && int(st.Uid) == vmUID && st.Mode&0o002 == 0:
	default:
		err = fmt.Errorf("%s is not the directory BoxLite made (owner %d, mode %o): refused",
			dir, st.Uid, st.Mode&0o7777)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// preparePodMounts makes the pod's volume directory before its box boots: podVMUser's
// (the runtime boots a read-write share only if its VM user can write it; sealPodMounts
// takes it back) and bound onto itself, so that detaching that bind at the end takes
// every bind beneath it along, whatever happened to the rest.
func preparePodMounts(dir string) error {
	uid, gid, err := vmUserIDs()
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return fmt.Errorf("make the pod's volume directory: %w", err)
	}
	p, err := openPodDir(dir)
	if err != nil {
		return fmt.Errorf("the pod's volume directory: %w", err)
	}
	defer p.Close()
	if p.dir.st.Mnt_id != p.parent.st.Mnt_id {
		return fmt.Errorf("the pod's volume directory %s is mounted already: refused", dir)
	}
	if err := unix.Fchown(p.dir.fd, uid, gid); err != nil {
		return fmt.Errorf("give the pod's volume directory to %s: %w", podVMUser, err)
	}
	if err := unix.Fchmod(p.dir.fd, 0o700); err != nil {
		return fmt.Errorf("chmod the pod's volume directory: %w", err)
	}
	if err := unix.Mount(procFd(p.dir.fd), procFd(p.dir.fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind the pod's volume directory onto itself: %w", err)
	}
	return nil
}

// sealPodMounts gives the pod's volume directory to root, mode 0755, once its box runs
// and before any container's files reach it (the first container's Create), and refuses
// a directory in which anything appeared while it was podVMUser's.
func sealPodMounts(dir string) error {
	p, err := openPodDir(dir)
	if err != nil {
		return fmt.Errorf("the pod's volume directory: %w", err)
	}
	defer p.Close()
	if p.sealed {
		return nil
	}
	if err := unix.Fchown(p.dir.fd, 0, 0); err != nil {
		return fmt.Errorf("give the pod's volume directory to root: %w", err)
	}
	if err := unix.Fchmod(p.dir.fd, 0o755); err != nil {
		return fmt.Errorf("chmod the pod's volume directory: %w", err)
	}
	// Looked at once the VM's user can no longer add anything.
	if names, _ := p.dir.f.Readdirnames(1); len(names) > 0 {
		return fmt.Errorf("the pod's volume directory %s holds %q, which BoxLite did not "+
			"make: refused (the pod's box wrote there before its first container)", dir, names[0])
	}
	return nil
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
	p, err := openPodDir(dir)
	if err != nil {
		return nil, fmt.Errorf("the pod's volume directory: %w", err)
	}
	defer p.Close()
	if !p.sealed {
		return nil, fmt.Errorf("the pod's volume directory %s is not sealed", dir)
	}
	name := safeName(id)
	var flags []string
	var c *dirFd
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for i, m := range s.Mounts {
		if !isBindMount(m) || providedByBox(m.Destination) {
			continue
		}
		if !filepath.IsAbs(m.Source) || !path.IsAbs(m.Destination) {
			return nil, fmt.Errorf("mount %s on %s: both paths must be absolute", m.Source,
				m.Destination)
		}
		// The source is the host's (config.json's, written by the kubelet): followed.
		src, err := unix.Open(m.Source, unix.O_PATH|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
		err = func() error {
			defer unix.Close(src)
			st, err := statFd(src)
			if err != nil {
				return err
			}
			kind := fileType(st)
			if kind != unix.S_IFDIR && kind != unix.S_IFREG {
				log.G(ctx).Warnf("mount %s on %s: not a directory or a regular file; a box "+
					"cannot share it, skipped", m.Source, m.Destination)
				return nil
			}
			if c == nil {
				if err := unix.Mkdirat(p.dir.fd, name, 0o755); err != nil && err != unix.EEXIST {
					return fmt.Errorf("make the container's volume directory: %w", err)
				}
				if c, err = openOwnDir(p.dir, name); err != nil {
					return err
				}
			}
			n := strconv.Itoa(i)
			target, err := makeMountPoint(c, n, kind)
			if err != nil {
				return fmt.Errorf("the mount point of %s: %w", m.Destination, err)
			}
			defer unix.Close(target)
			flag := unix.MS_BIND
			if hasOption(m.Options, "rbind") || !hasOption(m.Options, "bind") {
				flag |= unix.MS_REC // Kubernetes' volumes are rbind; type bind alone too (runc).
			}
			if err := unix.Mount(procFd(src), procFd(target), "", uintptr(flag), ""); err != nil {
				return fmt.Errorf("bind %s for %s: %w", m.Source, m.Destination, err)
			}
			ro := hasOption(m.Options, "ro")
			if ro {
				if err := remountReadOnly(c, n); err != nil {
					return fmt.Errorf("make %s read-only: %w", m.Destination, err)
				}
			}
			spec := podMountsGuest + "/" + name + "/" + n + ":" + m.Destination
			if ro {
				spec += ":ro"
			}
			flags = append(flags, "--container-mount", spec)
			return nil
		}()
		if err != nil {
			return nil, err
		}
	}
	return flags, nil
}

// makeMountPoint makes mount point `n` in container directory c (a directory, or an empty
// file for a file's bind) and returns an O_PATH descriptor of it: root's, of that kind,
// nothing mounted on it yet.
func makeMountPoint(c *dirFd, n string, kind uint32) (int, error) {
	var err error
	if kind == unix.S_IFDIR {
		err = unix.Mkdirat(c.fd, n, 0o755)
	} else {
		var fd int
		if fd, err = unix.Openat(c.fd, n, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|
			unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644); err == nil {
			unix.Close(fd)
		}
	}
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	fd, err := unix.Openat(c.fd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	st, err := statFd(fd)
	if err == nil && (fileType(st) != kind || !rootsOwn(st) || st.Mnt_id != c.st.Mnt_id) {
		err = fmt.Errorf("%s is not a mount point BoxLite made (a link, another owner, or "+
			"mounted already): refused", n)
	}
	if err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// remountReadOnly makes the bind on mount point `n` of c read-only.
func remountReadOnly(c *dirFd, n string) error {
	fd, err := unix.Openat(c.fd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	st, err := statFd(fd)
	if err != nil {
		return err
	}
	if st.Mnt_id == c.st.Mnt_id {
		return fmt.Errorf("%s is not mounted", n)
	}
	return unix.Mount("", procFd(fd), "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
}

// removeMountPoint unmounts what the shim bound on mount point `n` of c and removes it.
func removeMountPoint(c *dirFd, n string) error {
	for i := 0; ; i++ {
		fd, err := unix.Openat(c.fd, n, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open the mount point %s: %w", n, err)
		}
		st, err := statFd(fd)
		if err == nil && st.Mnt_id != c.st.Mnt_id {
			if i == maxStackedMounts {
				err = fmt.Errorf("%s: more than %d mounts on it", n, maxStackedMounts)
			} else if err = unix.Unmount(procFd(fd), unix.MNT_DETACH); err == nil {
				unix.Close(fd)
				continue
			}
		}
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("unmount %s: %w", n, err)
		}
		kind := fileType(st)
		if (kind != unix.S_IFDIR && kind != unix.S_IFREG) || !rootsOwn(st) {
			return fmt.Errorf("%s is not a mount point BoxLite made (type %o, owner %d): "+
				"refused, left", n, kind, st.Uid)
		}
		flags := 0
		if kind == unix.S_IFDIR {
			flags = unix.AT_REMOVEDIR
		}
		return unix.Unlinkat(c.fd, n, flags)
	}
}

// removeContainerVolumes unmounts and removes the container directory `name` of the pod's
// volume directory.
func removeContainerVolumes(p *podDir, name string) error {
	c, err := openOwnDir(p.dir, name)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	defer c.Close()
	names, err := c.f.Readdirnames(-1)
	if err != nil {
		return err
	}
	var failed []string
	for _, n := range names {
		if err := removeMountPoint(c, n); err != nil {
			failed = append(failed, err.Error())
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%s: %s", name, strings.Join(failed, "; "))
	}
	return unix.Unlinkat(p.dir.fd, name, unix.AT_REMOVEDIR)
}

// openPodDirToClean opens the pod's volume directory for a cleanup: nil when it is gone,
// or refused (logged, with what the cleanup was doing).
func openPodDirToClean(ctx context.Context, dir, doing string) *podDir {
	p, err := openPodDir(dir)
	if err != nil && !os.IsNotExist(err) {
		log.G(ctx).WithError(err).Warn(doing)
	}
	return p
}

// unmountPodVolumes undoes mountPodVolumes for container `id`.
func unmountPodVolumes(ctx context.Context, dir, id string) {
	p := openPodDirToClean(ctx, dir, "remove the container's volumes")
	if p == nil {
		return
	}
	defer p.Close()
	if !p.sealed {
		return // No container was made in it.
	}
	if err := removeContainerVolumes(p, safeName(id)); err != nil {
		log.G(ctx).WithError(err).Warn("remove the container's volumes")
	}
}

// cleanupPodMounts removes the pod's volume directory: every container's binds and mount
// points, then its own bind (with anything still mounted beneath it) and itself.
func cleanupPodMounts(ctx context.Context, dir string) {
	p := openPodDirToClean(ctx, dir, "remove the pod's volume directory")
	if p == nil {
		return
	}
	defer p.Close()
	if p.sealed {
		names, _ := p.dir.f.Readdirnames(-1)
		for _, n := range names {
			if err := removeContainerVolumes(p, n); err != nil {
				log.G(ctx).WithError(err).Warn("remove a container's volumes")
			}
		}
	}
	for i := 0; i < maxStackedMounts; i++ {
		fd, err := unix.Openat(p.parent.fd, p.name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		st, err := statFd(fd)
		if err == nil && st.Mnt_id != p.parent.st.Mnt_id {
			err = unix.Unmount(procFd(fd), unix.MNT_DETACH)
		} else if err == nil {
			err = io.EOF // Not a mount (any more).
		}
		unix.Close(fd)
		if err != nil {
			if err != io.EOF {
				log.G(ctx).WithError(err).Warn("unmount the pod's volume directory")
			}
			break
		}
	}
	if err := unix.Unlinkat(p.parent.fd, p.name, unix.AT_REMOVEDIR); err != nil && err != unix.ENOENT {
		log.G(ctx).WithError(err).Warn("remove the pod's volume directory")
	}
}
