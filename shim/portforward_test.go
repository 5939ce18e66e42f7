// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// podNetns is a network namespace of the test's (`ip netns`), with its loopback up.
func podNetns(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("network namespaces need root")
	}
	if _, err := exec.LookPath("iptables"); err != nil {
		t.Skip("no iptables")
	}
	name := fmt.Sprintf("blshim-pf-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	if out, err := exec.Command("ip", "-n", name, "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("lo up: %v: %s", err, out)
	}
	return "/run/netns/" + name
}

func dialInNetns(t *testing.T, netns string, port int) net.Conn {
	t.Helper()
	var conn net.Conn
	err := inNetns(netns, func() (err error) {
		conn, err = net.DialTimeout("tcp4", fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	return conn
}

// TestLoopbackForwarder: a connection to any port of the namespace's 127.0.0.1 reaches a
// tunnel CLI (here a script standing for `boxlite network tunnel`: it prints its
// arguments, then echoes) with the port it was made to; at most maxForwarded at once;
// Close removes the redirect.
func TestLoopbackForwarder(t *testing.T) {
	netns := podNetns(t)
	cliScript := filepath.Join(t.TempDir(), "boxlite")
	if err := os.WriteFile(cliScript, []byte("#!/bin/sh\necho \"$*\"\nexec cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOXLITE_CLI", cliScript)
	ctx := context.Background()
	f, err := startLoopbackForwarder(ctx, netns, "ns-pod")
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			f.Close(ctx)
		}
	}()
	// A connection made to the listener itself (as the box's would be, through
	// boxlite-net, not redirected) is closed without a tunnel.
	own := dialInNetns(t, netns, f.ln.Addr().(*net.TCPAddr).Port)
	if n, err := own.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Fatalf("connection to the listener itself: read %d bytes, %v; want it closed", n, err)
	}
	var held []*bufio.Reader
	for i := 0; i < maxForwarded; i++ {
		port := 4000 + i
		conn := dialInNetns(t, netns, port)
		r := bufio.NewReader(conn)
		line, err := r.ReadString('\n')
		if want := fmt.Sprintf("network tunnel ns-pod %d\n", port); err != nil || line != want {
			t.Fatalf("connection to port %d: %q, %v; want %q", port, line, err, want)
		}
		fmt.Fprintf(conn, "ping %d\n", i)
		if line, err := r.ReadString('\n'); err != nil || line != fmt.Sprintf("ping %d\n", i) {
			t.Fatalf("echo through the tunnel: %q, %v", line, err)
		}
		held = append(held, r)
	}
	// boxlite-net's own connections (as nobody) are not redirected: nothing listens there.
	connect := func(uid string) error {
		return exec.Command("nsenter", "--net="+netns, "--", "setpriv", "--reuid", uid,
			"--regid", uid, "--clear-groups", "bash", "-c",
			"exec 3<>/dev/tcp/127.0.0.1/4999").Run()
	}
	if err := connect(fmt.Sprint(netHelperUID)); err == nil {
		t.Fatal("a connection of boxlite-net's user was redirected")
	}
	// One more while maxForwarded are open: closed without a tunnel (root's, redirected).
	if err := connect("0"); err != nil {
		t.Fatalf("root's connection was not redirected: %v", err)
	}
	extra := dialInNetns(t, netns, 5000)
	if n, err := extra.Read(make([]byte, 64)); n != 0 || err == nil {
		t.Fatalf("connection beyond the bound: read %d bytes, %v; want it closed", n, err)
	}
	f.Close(ctx)
	closed = true
	// The tunnels ended with the forwarder (closed, not reset: the redirect went after
	// them), and the redirect is gone.
	for i, r := range held {
		if _, err := r.ReadString('\n'); err != io.EOF {
			t.Errorf("tunnel %d after Close: %v; want it closed", i, err)
		}
	}
	out, err := exec.Command("nsenter", "--net="+netns, "--", "iptables", "-t", "nat", "-S",
		"OUTPUT").CombinedOutput()
	if err != nil || strings.Contains(string(out), "REDIRECT") {
		t.Fatalf("redirect left after Close: %v: %s", err, out)
	}
}
