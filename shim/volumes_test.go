// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestProvidedByBox(t *testing.T) {
	for _, d := range []string{"/proc", "/sys/fs/cgroup", "/dev", "/dev/shm", "/dev/mqueue/", "/dev/pts"} {
		if !providedByBox(d) {
			t.Errorf("%s is the box's own", d)
		}
	}
	for _, d := range []string{"/data", "/etc/hosts", "/var/run/secrets/kubernetes.io/serviceaccount", "/devices", "/process"} {
		if providedByBox(d) {
			t.Errorf("%s is a volume", d)
		}
	}
}

// sealedPodDir makes a pod's volume directory as the sandbox's Start and its first
// container's Create do (preparePodMounts, sealPodMounts), beside a temp dir standing
// for the sandbox's bundle; cleanupPodMounts runs at the end of the test.
func sealedPodDir(t *testing.T) (tmp, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("binds need root")
	}
	if _, _, err := vmUserIDs(); err != nil {
		t.Skip(err)
	}
	tmp = t.TempDir()
	if err := os.Mkdir(filepath.Join(tmp, "pod1"), 0o700); err != nil {
		t.Fatal(err)
	}
	dir = podMountsDir(filepath.Join(tmp, "pod1"))
	if err := preparePodMounts(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cleanupPodMounts(context.Background(), dir) })
	if err := sealPodMounts(dir); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o755 || !rootsOwnPath(t, dir) {
		t.Fatalf("the sealed directory: %v %v", st, err)
	}
	return tmp, dir
}

func rootsOwnPath(t *testing.T, p string) bool {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Uid == 0 && st.Mode&0o022 == 0
}

func mountsUnder(t *testing.T, p string) []*mountinfo.Info {
	t.Helper()
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(p))
	if err != nil {
		t.Fatal(err)
	}
	return mounts
}

// decoy is a directory standing for /etc: what a planted link would point at.
func decoy(t *testing.T, tmp string) string {
	t.Helper()
	d := filepath.Join(tmp, "etc")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "passwd"), []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

// assertDecoyIntact: nothing mounted on the decoy, its file and nothing else in it.
func assertDecoyIntact(t *testing.T, d string) {
	t.Helper()
	if m := mountsUnder(t, d); len(m) != 0 {
		t.Fatalf("mounted on the decoy: %v", m[0].Mountpoint)
	}
	entries, err := os.ReadDir(d)
	if err != nil || len(entries) != 1 || entries[0].Name() != "passwd" {
		t.Fatalf("the decoy changed: %v %v", entries, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(d, &st); err != nil || st.Uid != 0 || st.Mode&0o7777 != 0o755 {
		t.Fatalf("the decoy's owner or mode changed: %d %o %v", st.Uid, st.Mode, err)
	}
}

// attackedPodDir: a sealed pod directory, a decoy and a volume's source (0777, an
// emptyDir's mode).
func attackedPodDir(t *testing.T) (dir, etc, src string) {
	tmp, dir := sealedPodDir(t)
	src = filepath.Join(tmp, "vol")
	if err := os.Mkdir(src, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir, decoy(t, tmp), src
}

// assertPodCleanupLeavesNoMount: the pod's end leaves no mount under dir, the decoy intact.
func assertPodCleanupLeavesNoMount(t *testing.T, dir, etc string) {
	t.Helper()
	cleanupPodMounts(context.Background(), dir)
	assertDecoyIntact(t, etc)
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Fatalf("mounts left under %s: %v", dir, m)
	}
}

func volumeSpec(src string) *specs.Spec {
	return &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
	}}
}

// The binds are the sources themselves (live, both ways), ro is enforced on the host, and
// unmountPodVolumes leaves no mount and no mount point; cleanupPodMounts leaves nothing.
func TestPodVolumesAreLiveBindsAndGoAway(t *testing.T) {
	tmp, dir := sealedPodDir(t)
	ctx := context.Background()
	src := filepath.Join(tmp, "empty-dir")
	token := filepath.Join(tmp, "token")
	sock := filepath.Join(tmp, "sock-dir")
	for _, d := range []string{src, sock} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(token, []byte("one"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{Mounts: []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc"},
		{Destination: "/data", Type: "bind", Source: src, Options: []string{"rbind", "rw"}},
		{Destination: "/dev/shm", Type: "bind", Source: sock, Options: []string{"rbind"}},
		{Destination: "/var/run/token", Source: token, Options: []string{"rbind", "ro"}},
	}}
	flags, err := mountPodVolumes(ctx, dir, "web", s)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--container-mount", podMountsGuest + "/web/1:/data",
		"--container-mount", podMountsGuest + "/web/3:/var/run/token:ro"}
	if !reflect.DeepEqual(flags, want) {
		t.Fatalf("flags %q, want %q", flags, want)
	}
	// What the shim made is root's and writable by no one else; the sources keep theirs.
	for _, p := range []string{dir, filepath.Join(dir, "web")} {
		if !rootsOwnPath(t, p) {
			t.Fatalf("%s is not root's 0755", p)
		}
	}
	if err := os.WriteFile(filepath.Join(src, "from-host"), []byte("h"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "web", "1", "from-host")); err != nil || string(got) != "h" {
		t.Fatalf("the host's write is not seen through the bind: %q %v", got, err)
	}
	if err := os.WriteFile(filepath.Join(dir, "web", "1", "from-box"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(src, "from-box")); err != nil || string(got) != "b" {
		t.Fatalf("a write through the bind does not reach the source: %q %v", got, err)
	}
	if err := os.WriteFile(token, []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "web", "3")); string(got) != "two" {
		t.Fatalf("the file bind reads %q after the host rewrote it", got)
	}
	if err := os.WriteFile(filepath.Join(dir, "web", "3"), []byte("x"), 0o644); err == nil {
		t.Fatal("a ro volume took a write")
	}
	if n := len(mountsUnder(t, dir)); n != 3 {
		t.Fatalf("%d mounts under the pod's directory, want its own and two volumes", n)
	}
	unmountPodVolumes(ctx, dir, "web")
	if m := mountsUnder(t, dir); len(m) != 1 || m[0].Mountpoint != dir {
		t.Fatalf("mounts left under %s: %v", dir, m)
	}
	if _, err := os.Lstat(filepath.Join(dir, "web")); !os.IsNotExist(err) {
		t.Fatalf("the container's mount points are left: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "from-host")); string(got) != "h" {
		t.Fatal("unmounting lost the source's files")
	}
	// A second container, then the pod's end: no mount, no directory.
	if _, err := mountPodVolumes(ctx, dir, "db", s); err != nil {
		t.Fatal(err)
	}
	cleanupPodMounts(ctx, dir)
	if m := mountsUnder(t, dir); len(m) != 0 {
		t.Fatalf("mounts left under %s: %v", dir, m)
	}
	if _, err := os.Lstat(dir); !os.IsNotExist(err) {
		t.Fatalf("the pod's directory is left: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "from-box")); string(got) != "b" {
		t.Fatal("the pod's cleanup lost the source's files")
	}
}

// A link where a container's directory should be: refused at Create, at its Delete and
// at the pod's; nothing is bound on, made in or removed from what it points at.
func TestALinkForAContainersDirectoryIsRefused(t *testing.T) {
	dir, etc, src := attackedPodDir(t)
	ctx := context.Background()
	if err := os.Symlink(etc, filepath.Join(dir, "web")); err != nil {
		t.Fatal(err)
	}
	_, err := mountPodVolumes(ctx, dir, "web", volumeSpec(src))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a linked container directory was used: %v", err)
	}
	assertDecoyIntact(t, etc)
	unmountPodVolumes(ctx, dir, "web")
	assertPodCleanupLeavesNoMount(t, dir, etc)
}

// A link where a mount point should be, at Create and among a container's mount points at
// Delete: refused and left; the decoy is untouched, the real mount points go.
func TestALinkForAMountPointIsRefused(t *testing.T) {
	dir, etc, src := attackedPodDir(t)
	ctx := context.Background()
	if err := os.Mkdir(filepath.Join(dir, "web"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(etc, filepath.Join(dir, "web", "0")); err != nil {
		t.Fatal(err)
	}
	_, err := mountPodVolumes(ctx, dir, "web", volumeSpec(src))
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a linked mount point was used: %v", err)
	}
	assertDecoyIntact(t, etc)
	// Another container bound its volume; a link is planted beside its mount point.
	if _, err := mountPodVolumes(ctx, dir, "db", volumeSpec(src)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(etc, filepath.Join(dir, "db", "7")); err != nil {
		t.Fatal(err)
	}
	unmountPodVolumes(ctx, dir, "db")
	assertDecoyIntact(t, etc)
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Fatalf("mounts under %s: %d, want the directory's own", dir, len(m))
	}
	left, _ := os.ReadDir(filepath.Join(dir, "db"))
	if len(left) != 1 || left[0].Name() != "7" {
		t.Fatalf("left in the container's directory: %v, want the link alone", left)
	}
	assertPodCleanupLeavesNoMount(t, dir, etc)
}

// Directories of another owner, or writable by others, are not the shim's: refused.
func TestDirectoriesOfAnotherOwnerAreRefused(t *testing.T) {
	dir, etc, src := attackedPodDir(t)
	ctx := context.Background()
	web := filepath.Join(dir, "web")
	if err := os.Mkdir(web, 0o755); err != nil {
		t.Fatal(err)
	}
	uid, gid, _ := vmUserIDs()
	if err := os.Chown(web, uid, gid); err != nil {
		t.Fatal(err)
	}
	if _, err := mountPodVolumes(ctx, dir, "web", volumeSpec(src)); err == nil {
		t.Fatal("a container directory of the VM's user was used")
	}
	if err := os.Chown(web, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(web, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := mountPodVolumes(ctx, dir, "web", volumeSpec(src)); err == nil {
		t.Fatal("a container directory writable by all was used")
	}
	if m := mountsUnder(t, dir); len(m) != 1 {
		t.Fatalf("mounts under %s: %d, want the directory's own", dir, len(m))
	}
	// The pod's directory itself, writable by others.
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := mountPodVolumes(ctx, dir, "db", volumeSpec(src)); err == nil {
		t.Fatal("a pod directory writable by all was used")
	}
	os.Chmod(dir, 0o755)
	assertPodCleanupLeavesNoMount(t, dir, etc)
}

// The pod's directory as a link, or with something mounted on it: preparePodMounts
// refuses it and changes nothing of what it points at.
func TestALinkOrAMountForThePodDirectoryIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	if _, _, err := vmUserIDs(); err != nil {
		t.Skip(err)
	}
	tmp := t.TempDir()
	etc := decoy(t, tmp)
	dir := podMountsDir(filepath.Join(tmp, "pod1"))
	if err := os.Symlink(etc, dir); err != nil {
		t.Fatal(err)
	}
	if err := preparePodMounts(dir); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("a linked pod directory was used: %v", err)
	}
	if err := sealPodMounts(dir); err == nil {
		t.Fatal("a linked pod directory was sealed")
	}
	cleanupPodMounts(context.Background(), dir)
	assertDecoyIntact(t, etc)
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(dir, unix.MNT_DETACH)
	if err := preparePodMounts(dir); err == nil || !strings.Contains(err.Error(), "file system") {
		t.Fatalf("a tmpfs on the pod directory was used: %v", err)
	}
}

// What appeared in the pod's directory while it was the VM's user's (the box booting) is
// refused when it is sealed; the directory is root's all the same.
func TestSealRefusesWhatTheBootingBoxMade(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binds need root")
	}
	uid, gid, err := vmUserIDs()
	if err != nil {
		t.Skip(err)
	}
	dir := podMountsDir(filepath.Join(t.TempDir(), "pod1"))
	if err := preparePodMounts(dir); err != nil {
		t.Fatal(err)
	}
	defer cleanupPodMounts(context.Background(), dir)
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Fatalf("the booting box's directory is not %s's: %v %v", podVMUser, st.Uid, err)
	}
	if err := os.Symlink("/etc", filepath.Join(dir, "web")); err != nil {
		t.Fatal(err)
	}
	if err := sealPodMounts(dir); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("sealed with a planted link: %v", err)
	}
	if !rootsOwnPath(t, dir) {
		t.Fatal("the directory is not root's after a refused seal")
	}
	if _, err := mountPodVolumes(context.Background(), dir, "web", volumeSpec(t.TempDir())); err == nil {
		t.Fatal("the planted link was used")
	}
}
