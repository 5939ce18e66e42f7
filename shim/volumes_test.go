// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/moby/sys/mountinfo"
	"github.com/opencontainers/runtime-spec/specs-go"
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

// The binds are the sources themselves (live, both ways), ro is enforced on the host, and
// unmountPodVolumes leaves no mount and no mount point.
func TestPodVolumesAreLiveBindsAndGoAway(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("binds need root")
	}
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "mounts")
	src := filepath.Join(tmp, "empty-dir")
	token := filepath.Join(tmp, "token")
	sock := filepath.Join(tmp, "sock-dir")
	for _, d := range []string{dir, src, sock} {
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
	unmountPodVolumes(ctx, dir, "web")
	mounts, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil || len(mounts) != 0 {
		t.Fatalf("mounts left under %s: %v %v", dir, mounts, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "web")); !os.IsNotExist(err) {
		t.Fatalf("the container's mount points are left: %v", err)
	}
	if got, _ := os.ReadFile(filepath.Join(src, "from-host")); string(got) != "h" {
		t.Fatal("unmounting lost the source's files")
	}
}
