// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

func TestBoxNamesAreValidAndStable(t *testing.T) {
	short := newBox("default", "web", "/b")
	if short.name != "default-web" {
		t.Fatalf("name %q, want default-web", short.name)
	}
	// A CRI id (64 hex) makes the name too long: a hash of (namespace, id) instead.
	long := newBox("k8s.io", strings.Repeat("ab", 32), "/b")
	again := newBox("k8s.io", strings.Repeat("ab", 32), "/other")
	if !boxNameRe.MatchString(long.name) || long.name != again.name {
		t.Fatalf("name %q (again %q) is not a stable valid box name", long.name, again.name)
	}
	if other := newBox("k8s.io", strings.Repeat("ab", 31)+"ac", "/b"); other.name == long.name {
		t.Fatalf("two tasks share the box name %q", long.name)
	}
	if newBox("a", "b", "/b").imageRef == newBox("a", "c", "/b").imageRef {
		t.Fatal("two tasks share a rootfs image reference")
	}
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }

func TestBoxFlagsFromResourcesAndMounts(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "hosts")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := &specs.Spec{
		Linux: &specs.Linux{Resources: &specs.LinuxResources{
			CPU:    &specs.LinuxCPU{Quota: i64(150000), Period: u64(100000)},
			Memory: &specs.LinuxMemory{Limit: i64(300<<20 + 1)},
		}},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/data", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}},
			{Destination: "/rw", Source: dir, Options: []string{"bind"}},
			{Destination: "/etc/hosts", Type: "bind", Source: file},
			{Destination: "/gone", Type: "bind", Source: filepath.Join(dir, "missing")},
		},
	}
	s.Process = &specs.Process{Rlimits: []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Hard: 4096, Soft: 1024}, {Type: "RLIMIT_STACK", Hard: 1, Soft: 1},
		{Type: "RLIMIT_CPU", Hard: 30, Soft: 30}}}
	want := []string{"--cpus", "2", "--memory", "301", "--ulimit", "nofile=1024", "--ulimit",
		"cpu=30", "-v", dir + ":/data:ro", "-v", dir + ":/rw"}
	if got := boxFlags(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("boxFlags = %q, want %q", got, want)
	}
	// Limits are clamped to what a box accepts.
	s.Linux.Resources.CPU.Quota = i64(100 * 100000)
	s.Linux.Resources.Memory.Limit = i64(1 << 20)
	s.Mounts = nil
	s.Process = nil
	want = []string{"--cpus", "16", "--memory", "128"}
	if got := boxFlags(s); !reflect.DeepEqual(got, want) {
		t.Fatalf("boxFlags = %q, want %q", got, want)
	}
}

func TestProcessFlags(t *testing.T) {
	p := &specs.Process{Env: []string{"A=1", "B=x=y", "broken"}, Cwd: "/srv",
		User: specs.User{UID: 1000, GID: 100}}
	want := []string{"-e", "A=1", "-e", "B=x=y", "-w", "/srv", "-u", "1000:100"}
	if got := processFlags(p); !reflect.DeepEqual(got, want) {
		t.Fatalf("processFlags = %q, want %q", got, want)
	}
}

func TestPublishFlags(t *testing.T) {
	cases := []struct {
		annotations map[string]string
		want        []string
		err         string
	}{
		{nil, nil, ""},
		{map[string]string{publishAnnotation: "80, 8080"},
			[]string{"-p", "0.0.0.0:80:80", "-p", "0.0.0.0:8080:8080"}, ""},
		{map[string]string{publishAnnotation: "80", criContainerType: "sandbox"}, nil, ""},
		{map[string]string{publishAnnotation: "80", publishAnnotation + ".app": "9000",
			criContainerName: "app"}, []string{"-p", "0.0.0.0:9000:9000"}, ""},
		{map[string]string{publishAnnotation: "80", criContainerName: "other"},
			[]string{"-p", "0.0.0.0:80:80"}, ""},
		{map[string]string{publishAnnotation: "0"}, nil, `"0" is not a port`},
		{map[string]string{publishAnnotation: "65536"}, nil, `"65536" is not a port`},
		{map[string]string{publishAnnotation: "80,http"}, nil, `"http" is not a port`},
	}
	for _, c := range cases {
		got, err := publishFlags(&specs.Spec{Annotations: c.annotations})
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v: error %v, want %q", c.annotations, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v: %q, %v; want %q", c.annotations, got, err, c.want)
		}
	}
}

func TestNetworkNamespace(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{
		{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace, Path: "/var/run/netns/cni-1"}}}}
	if got := networkNamespace(s); got != "/var/run/netns/cni-1" {
		t.Fatalf("networkNamespace = %q", got)
	}
	if got := networkNamespace(&specs.Spec{}); got != "" {
		t.Fatalf("networkNamespace of no Linux section = %q", got)
	}
}

func TestReadSpecNeedsArgs(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"process":{"args":[]}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readSpec(dir); err == nil || !strings.Contains(err.Error(), "no process args") {
		t.Fatalf("readSpec = %v, want the missing args named", err)
	}
}

func TestPodKindsAndGrouping(t *testing.T) {
	spec := func(ann map[string]string) *specs.Spec { return &specs.Spec{Annotations: ann} }
	cases := []struct {
		ann  map[string]string
		kind taskKind
		pod  string
	}{
		{nil, kindBox, ""},
		{map[string]string{criContainerType: "sandbox"}, kindPause, ""},
		{map[string]string{criContainerType: "sandbox", criSandboxID: "p1"}, kindPodSandbox, "p1"},
		{map[string]string{criContainerType: "container", criSandboxID: "p1"}, kindPodContainer, "p1"},
		{map[string]string{criContainerType: "container"}, kindBox, ""},
	}
	for _, c := range cases {
		if k, pod := kindOf(spec(c.ann)); k != c.kind || pod != c.pod {
			t.Errorf("kindOf(%v) = %v %q, want %v %q", c.ann, k, pod, c.kind, c.pod)
		}
	}
	dir := t.TempDir()
	if g := groupOf(dir, "t1"); g != "t1" {
		t.Errorf("a bundle without config.json groups as %q, want its own id", g)
	}
	cfg := `{"process":{"args":["sh"]},"annotations":{"` + criContainerType + `":"container","` +
		criSandboxID + `":"pod-7"}}`
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if g := groupOf(dir, "t1"); g != "pod-7" {
		t.Errorf("a pod container groups as %q, want its pod pod-7", g)
	}
}

func TestContainerRootsAreDistinctPathsUnderTheRootsDir(t *testing.T) {
	a, b := containerRoot("web"), containerRoot("db")
	if a != podRootsDir+"/web/rootfs" || a == b {
		t.Fatalf("roots %q and %q", a, b)
	}
	odd := containerRoot("../../etc")
	if strings.Contains(odd, "..") || !strings.HasPrefix(odd, podRootsDir+"/h-") {
		t.Fatalf("an id that is not a plain name became %q", odd)
	}
}

func TestPodBoxFlagsAndPorts(t *testing.T) {
	s := &specs.Spec{Annotations: map[string]string{
		criSandboxCPUQuota: "250000", criSandboxCPUPeriod: "100000",
		criSandboxMemory: strconv.Itoa(512 << 20),
		publishAnnotation: "80", publishAnnotation + ".web": "8080,80"}}
	got := strings.Join(podBoxFlags(s), " ")
	if got != "--cpus 3 --memory 512" {
		t.Errorf("podBoxFlags = %q", got)
	}
	ports, err := podPublishFlags(s)
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(ports)
	if strings.Join(ports, " ") != "-p -p 0.0.0.0:8080:8080 0.0.0.0:80:80" {
		t.Errorf("podPublishFlags = %v", ports)
	}
	s.Annotations[publishAnnotation+".db"] = "x"
	if _, err := podPublishFlags(s); err == nil {
		t.Error("a bad port of one container was accepted")
	}
}

func TestPodDiskSizeAnnotation(t *testing.T) {
	for value, want := range map[string]string{"": "", "20G": "--disk-size 20G", "8": "--disk-size 8",
		"512MiB": "--disk-size 512MiB"} {
		s := &specs.Spec{Annotations: map[string]string{diskSizeAnnotation: value}}
		got, err := podDiskFlags(s)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: %v %v, want %q", value, got, err, want)
		}
	}
	for _, bad := range []string{"0", "-1", "1T", "2 G", "lots"} {
		s := &specs.Spec{Annotations: map[string]string{diskSizeAnnotation: bad}}
		if _, err := podDiskFlags(s); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestPodMaxClientsAnnotation(t *testing.T) {
	for value, want := range map[string]string{"": "--max-clients 8", "30": "--max-clients 30",
		" 5 ": "--max-clients 5", "1": "--max-clients 1"} {
		s := &specs.Spec{Annotations: map[string]string{maxClientsAnnotation: value}}
		got, err := podClientFlags(s)
		if err != nil || strings.Join(got, " ") != want {
			t.Errorf("%q: %v %v, want %q", value, got, err, want)
		}
	}
	for _, bad := range []string{"0", "31", "-2", "4.5", "many"} {
		s := &specs.Spec{Annotations: map[string]string{maxClientsAnnotation: bad}}
		_, err := podClientFlags(s)
		if err == nil || !strings.Contains(err.Error(), maxClientsAnnotation) {
			t.Errorf("%q: %v, want an error naming the annotation", bad, err)
		}
	}
}

func TestContainerLimitFlags(t *testing.T) {
	mem, quota, period := int64(100<<20+1), int64(50000), uint64(100000)
	c := &container{id: "web", spec: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		CPU:    &specs.LinuxCPU{Quota: &quota, Period: &period},
		Pids:   &specs.LinuxPids{Limit: 1 << 30}}}}}
	p := &specs.Process{Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 400},
		{Type: "RLIMIT_CORE", Soft: 1, Hard: 1}, {Type: "RLIMIT_CPU", Soft: 1 << 40, Hard: 1 << 40}}}
	got := strings.Join(containerLimitFlags(c, p), " ")
	want := "--ulimit nofile=321 --ulimit cpu=1099511627776 --cgroup-name web --memory 101 " +
		"--cpu-quota 50000 --cpu-period 100000 --pids-limit 4194304"
	if got != want {
		t.Errorf("containerLimitFlags = %q, want %q", got, want)
	}
	// No resources: the cgroup only; an unsafe id is hashed into a safe name.
	c = &container{id: "a/../b", spec: &specs.Spec{}}
	got = strings.Join(containerLimitFlags(c, &specs.Process{}), " ")
	if !regexp.MustCompile(`^--cgroup-name h-[0-9a-f]{32}$`).MatchString(got) {
		t.Errorf("containerLimitFlags = %q", got)
	}
	// Tiny values are brought within the CLI's bounds.
	mem, quota, period = 1, 10, 10
	c = &container{id: "x", spec: &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem}, CPU: &specs.LinuxCPU{Quota: &quota, Period: &period}}}}}
	got = strings.Join(containerLimitFlags(c, nil), " ")
	if got != "--cgroup-name x --memory 4 --cpu-quota 1000 --cpu-period 1000" {
		t.Errorf("containerLimitFlags = %q", got)
	}
}
