// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"

	"github.com/containerd/containerd/archive"
	"github.com/containerd/containerd/log"
	"github.com/containerd/containerd/mount"
	"github.com/opencontainers/go-digest"
	imgspec "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// The files the shim keeps in the task's bundle directory (containerd removes the bundle
// after `delete`; the shim removes them first so nothing of ours outlives the task).
const (
	layoutDirName = "boxlite-layout" // The OCI layout made from the rootfs (boxlite --rootfs).
	mountedMarker = "boxlite-rootfs-mounted"
)

// BoxLite box names: [a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 63 (src/runtime/box_options.cc).
var boxNameRe = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// cacheImages: BOXLITE_SHIM_CACHE_IMAGES=1 keeps each rootfs image BoxLite imported,
// named by its content, so later tasks of the same image skip the import and restore the
// warm-start template of its first boot (docs/kubernetes.md). Off by default: a deleted
// task leaves no file behind, and its boxes boot cold (a template would be removed with
// the image at once).
func cacheImages() bool { return os.Getenv("BOXLITE_SHIM_CACHE_IMAGES") == "1" }

// box is the BoxLite box of one task. Its name and the reference of its rootfs image are
// derived from (namespace, id) alone, so `shim delete` finds them without any state.
type box struct {
	ns, id, bundle string
	name           string
	imageRef       string
}

func newBox(ns, id, bundle string) *box {
	sum := sha256.Sum256([]byte(ns + "/" + id))
	h := hex.EncodeToString(sum[:])
	name := ns + "-" + id
	if !boxNameRe.MatchString(name) {
		name = "ctr-" + h[:32]
	}
	return &box{ns: ns, id: id, bundle: bundle, name: name,
		imageRef: "boxlite-shim/" + h[:24] + ":latest"}
}

func (b *box) rootfs() string { return filepath.Join(b.bundle, "rootfs") }
func (b *box) layout() string { return filepath.Join(b.bundle, layoutDirName) }

// cliPath is the boxlite CLI the shim drives: $BOXLITE_CLI, else the `boxlite` installed
// beside this binary, else the one on PATH.
func cliPath() string {
	if p := os.Getenv("BOXLITE_CLI"); p != "" {
		return p
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "boxlite")
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return "boxlite"
}

// cliEnv is the environment of the CLI: the shim's (containerd's: BOXLITE_HOME and the
// other BoxLite variables set there apply), with BoxLite's own warnings off unless
// BOXLITE_LOG asks for them, so they do not mix into the task's stderr.
func cliEnv() []string {
	env := os.Environ()
	if _, ok := os.LookupEnv("BOXLITE_LOG"); !ok {
		env = append(env, "BOXLITE_LOG=error")
	}
	return env
}

// cli runs one short boxlite command and returns its combined output.
func cli(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, cliPath(), args...)
	cmd.Env = cliEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("boxlite %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)))
	}
	return out, nil
}

// mountRootfs mounts the snapshot containerd gives (bind or overlay) on bundle/rootfs.
func (b *box) mountRootfs(mounts []mount.Mount) error {
	if len(mounts) == 0 {
		return nil // The bundle's rootfs directory is already populated.
	}
	if err := mount.All(mounts, b.rootfs()); err != nil {
		return fmt.Errorf("mount the task's rootfs: %w", err)
	}
	return os.WriteFile(filepath.Join(b.bundle, mountedMarker), nil, 0o600)
}

// writeLayout turns the bundle's rootfs into a one-layer OCI image layout that `boxlite
// run --rootfs` boots from (BoxLite imports it and builds the box's ext4 disk from it).
// The image carries no config of its own: the process comes from config.json as flags.
func (b *box) writeLayout(ctx context.Context) error {
	dir := b.layout()
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o700); err != nil {
		return err
	}
	// The layer: the rootfs as an uncompressed tar (containerd's own archive writer:
	// hard links, devices, xattrs and whiteouts handled as in every containerd image).
	tmp, err := os.CreateTemp(blobs, ".layer-")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	digester := digest.Canonical.Digester()
	if err := archive.WriteDiff(ctx, io.MultiWriter(tmp, digester.Hash()), "", b.rootfs()); err != nil {
		tmp.Close()
		return fmt.Errorf("archive the task's rootfs: %w", err)
	}
	st, err := tmp.Stat()
	if err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	layer := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digester.Digest(),
		Size: st.Size()}
	if err := os.Rename(tmp.Name(), filepath.Join(blobs, layer.Digest.Encoded())); err != nil {
		return err
	}
	config := ocispec.Image{Architecture: goArch(), OS: "linux",
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{layer.Digest}}}
	configDesc, err := writeBlob(blobs, ocispec.MediaTypeImageConfig, config)
	if err != nil {
		return err
	}
	manifest := ocispec.Manifest{Versioned: imgspec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageManifest, Config: configDesc,
		Layers: []ocispec.Descriptor{layer}}
	manifestDesc, err := writeBlob(blobs, ocispec.MediaTypeImageManifest, manifest)
	if err != nil {
		return err
	}
	if cacheImages() {
		b.imageRef = "boxlite-shim/rootfs-" + layer.Digest.Encoded()[:32] + ":latest"
	}
	manifestDesc.Annotations = map[string]string{ocispec.AnnotationRefName: b.imageRef}
	index := ocispec.Index{Versioned: imgspec.Versioned{SchemaVersion: 2},
		MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{manifestDesc}}
	if err := writeJSON(filepath.Join(dir, "index.json"), index); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, ocispec.ImageLayoutFile),
		ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
}

// goArch is the OCI architecture of this host (Go and OCI spell them alike).
func goArch() string { return runtime.GOARCH }

func writeBlob(blobs, mediaType string, v interface{}) (ocispec.Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := digest.FromBytes(data)
	if err := os.WriteFile(filepath.Join(blobs, d.Encoded()), data, 0o600); err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(data))}, nil
}

func writeJSON(path string, v interface{}) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
}

// cleanup removes everything of the task: the box (its VM stops with it), the imported
// rootfs image, the layout and the rootfs mount. Every step is tried; failures are logged
// (a box or image that is already gone is one: `shim delete` after a dead shim cannot
// know how far it got).
func (b *box) cleanup(ctx context.Context) {
	if _, err := cli(ctx, "rm", "-f", b.name); err != nil {
		log.G(ctx).WithError(err).Debug("remove the box")
	}
	if !cacheImages() {
		if _, err := cli(ctx, "rmi", b.imageRef); err != nil {
			log.G(ctx).WithError(err).Debug("remove the box's rootfs image")
		}
	}
	// Last: its absence tells `shim delete` that Delete removed everything above.
	if err := os.RemoveAll(b.layout()); err != nil {
		log.G(ctx).WithError(err).Warn("remove the rootfs layout")
	}
	b.unmountRootfs(ctx)
}

// cleanedUp: Delete finished (the layout, made first and removed last, is gone).
func (b *box) cleanedUp() bool {
	_, err := os.Lstat(b.layout())
	return os.IsNotExist(err)
}

func (b *box) unmountRootfs(ctx context.Context) {
	marker := filepath.Join(b.bundle, mountedMarker)
	if _, err := os.Stat(marker); err == nil {
		if err := mount.UnmountAll(b.rootfs(), 0); err != nil {
			log.G(ctx).WithError(err).Warn("unmount the task's rootfs")
		} else {
			os.Remove(marker)
		}
	}
}

// readSpec reads the bundle's config.json.
func readSpec(bundle string) (*specs.Spec, error) {
	data, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("the bundle's config.json: %w", err)
	}
	if s.Process == nil || len(s.Process.Args) == 0 {
		return nil, fmt.Errorf("the bundle's config.json has no process args")
	}
	return &s, nil
}

// processFlags maps an OCI process onto flags of `boxlite run` and `boxlite exec`: env,
// working directory and user (uid:gid as the agent resolves it in the box).
func processFlags(p *specs.Process) []string {
	var args []string
	for _, kv := range p.Env {
		if strings.Contains(kv, "=") {
			args = append(args, "-e", kv)
		}
	}
	if p.Cwd != "" {
		args = append(args, "-w", p.Cwd)
	}
	args = append(args, "-u", strconv.FormatUint(uint64(p.User.UID), 10)+":"+
		strconv.FormatUint(uint64(p.User.GID), 10))
	return args
}

// Limits of the boxlite CLI (include/boxlite/options.h: kMaxCpus, kMin/kMaxMemoryMib).
const (
	minMemoryMiB = 128
	maxCpus      = 16
	maxMemoryMiB = 65536
)

// ulimitNames are the OCI rlimits a box applies (`boxlite run --ulimit`, one value for
// soft and hard: the soft one, the limit in force); the others are not applied.
var ulimitNames = map[string]string{"RLIMIT_NOFILE": "nofile", "RLIMIT_FSIZE": "fsize",
	"RLIMIT_NPROC": "nproc", "RLIMIT_AS": "as", "RLIMIT_CPU": "cpu"}

// boxFlags maps the container's resources, rlimits and mounts onto box flags: the CPU quota is the
// box's vCPUs (rounded up), the memory limit its RAM, and host bind mounts become 9p
// volumes. /proc, /dev, /sys and the other kernel file systems are the guest's own.
func boxFlags(s *specs.Spec) []string {
	var args []string
	if s.Linux != nil && s.Linux.Resources != nil {
		r := s.Linux.Resources
		if r.CPU != nil && r.CPU.Quota != nil && *r.CPU.Quota > 0 && r.CPU.Period != nil && *r.CPU.Period > 0 {
			cpus := (uint64(*r.CPU.Quota) + *r.CPU.Period - 1) / *r.CPU.Period
			if cpus > maxCpus {
				cpus = maxCpus
			}
			args = append(args, "--cpus", strconv.FormatUint(cpus, 10))
		}
		if r.Memory != nil && r.Memory.Limit != nil && *r.Memory.Limit > 0 {
			mib := (*r.Memory.Limit + (1 << 20) - 1) >> 20
			if mib < minMemoryMiB {
				mib = minMemoryMiB
			} else if mib > maxMemoryMiB {
				mib = maxMemoryMiB
			}
			args = append(args, "--memory", strconv.FormatInt(mib, 10))
		}
	}
	if s.Process != nil {
		for _, r := range s.Process.Rlimits {
			if name, ok := ulimitNames[r.Type]; ok {
				args = append(args, "--ulimit", name+"="+strconv.FormatUint(r.Soft, 10))
			}
		}
	}
	for _, m := range s.Mounts {
		if m.Type != "bind" && !hasOption(m.Options, "bind") && !hasOption(m.Options, "rbind") {
			continue
		}
		st, err := os.Stat(m.Source)
		if err != nil || !st.IsDir() {
			continue // Files (resolv.conf, hosts, ...) and missing sources: the guest's own.
		}
		spec := m.Source + ":" + m.Destination
		if hasOption(m.Options, "ro") {
			spec += ":ro"
		}
		args = append(args, "-v", spec)
	}
	return args
}

// publishAnnotation lists the box's ports to publish: "PORT[,PORT...]", each published
// on every address of the network namespace the box runs in (the pod's under Kubernetes:
// the pod's IP). containerd passes it from the pod when its runtime config allows it
// (pod_annotations, deploy/kubernetes/containerd-boxlite.toml). In a pod of several
// containers, publishAnnotation + "." + NAME applies to container NAME only.
const publishAnnotation = "boxlite.dev/publish"

// The CRI's annotations naming a container's kind ("sandbox": the pod's pause container)
// and its name.
const (
	criContainerType = "io.kubernetes.cri.container-type"
	criContainerName = "io.kubernetes.cri.container-name"
)

// publishFlags maps the publish annotation onto -p flags (none for a pod's sandbox
// container, which holds the pod's namespaces and serves nothing).
func publishFlags(s *specs.Spec) ([]string, error) {
	if s.Annotations[criContainerType] == "sandbox" {
		return nil, nil
	}
	key := publishAnnotation
	if name := s.Annotations[criContainerName]; name != "" {
		if _, ok := s.Annotations[publishAnnotation+"."+name]; ok {
			key = publishAnnotation + "." + name
		}
	}
	return portFlags(key, s.Annotations[key])
}

// networkNamespace is the network namespace config.json asks the task to join (the pod's,
// made by the CNI plugins), or "": the box's network helper runs in it, so the box's
// traffic leaves through the pod's interfaces and its published ports listen there.
func networkNamespace(s *specs.Spec) string {
	if s.Linux == nil {
		return ""
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			return ns.Path
		}
	}
	return ""
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}
