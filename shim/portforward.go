// Copyright 2026 The BoxLite Authors. SPDX-License-Identifier: Apache-2.0

package main

// `kubectl port-forward` into a pod's box (docs/kubernetes.md, "Streaming"). containerd's
// CRI answers PortForward itself: it enters the pod's network namespace on the host and
// dials localhost:PORT there, and never tells the shim which port. Under BoxLite nothing
// of the pod listens there (its servers are in the box, on the guest's own loopback), so
// the shim makes the namespace's loopback lead into the box: a listener on 127.0.0.1 of
// the pod's namespace, an iptables REDIRECT there sending every other TCP connection to
// 127.0.0.1 to it, and per connection a `boxlite network tunnel POD-BOX PORT` (PORT the
// connection's original destination, SO_ORIGINAL_DST) carrying its bytes to the guest's
// 127.0.0.1:PORT over the box's agent channel.

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/containerd/containerd/log"
	"golang.org/x/sys/unix"
)

// maxForwarded bounds the connections forwarded at once (each a CLI process on the host
// and a client of the box), whoever makes them, so no client of the pod's loopback can
// make the host start processes without limit. (The box's own connections there, made
// by boxlite-net, are not redirected, and one made to the listener itself is closed.)
// Beyond it a connection is closed at once.
const maxForwarded = 8

// netHelperUID is the user boxlite-net runs as once set up (src/net/main.cc drops root to
// nobody): its own connections to the namespace's loopback (libslirp's, to the host's
// loopback and to its flow interceptor) are not redirected.
const netHelperUID = 65534

// loopbackForwarder is a pod's listener and redirect; Close removes both and ends the
// tunnels it runs.
type loopbackForwarder struct {
	netns  string
	ln     net.Listener
	rule   []string // The iptables rule (after -A/-D).
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// inNetns runs fn with the calling thread in network namespace netns (sockets fn makes
// stay there), then brings the thread back; it is locked meanwhile so no other goroutine
// runs there.
func inNetns(netns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own, err := unix.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()),
		unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the shim's network namespace: %w", err)
	}
	defer unix.Close(own)
	fd, err := unix.Open(netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open network namespace %s: %w", netns, err)
	}
	defer unix.Close(fd)
	if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("enter network namespace %s: %w", netns, err)
	}
	ferr := fn()
	if err := unix.Setns(own, unix.CLONE_NEWNET); err != nil {
		// The thread cannot come back: never unlocked, Go ends it with its goroutine.
		runtime.LockOSThread()
		return fmt.Errorf("leave network namespace %s: %w", netns, err)
	}
	return ferr
}

// listenInNetns listens on 127.0.0.1 (a free port) of network namespace netns.
func listenInNetns(netns string) (net.Listener, error) {
	var ln net.Listener
	err := inNetns(netns, func() (err error) {
		ln, err = net.Listen("tcp4", "127.0.0.1:0")
		return err
	})
	return ln, err
}

// iptables runs iptables in network namespace netns.
func iptables(ctx context.Context, netns string, args ...string) error {
	argv := append([]string{"--net=" + netns, "--", "iptables", "-w", "5"}, args...)
	out, err := exec.CommandContext(ctx, "nsenter", argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %w: %s", strings.Join(args, " "), err,
			strings.TrimSpace(string(out)))
	}
	return nil
}

// startLoopbackForwarder makes the loopback of the pod's network namespace netns lead into
// the pod's box named boxName.
func startLoopbackForwarder(ctx context.Context, netns, boxName string) (*loopbackForwarder, error) {
	ln, err := listenInNetns(netns)
	if err != nil {
		return nil, err
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	rule := []string{"OUTPUT", "-t", "nat", "-o", "lo", "-p", "tcp", "-d", "127.0.0.1",
		"!", "--dport", port, "-m", "owner", "!", "--uid-owner", strconv.Itoa(netHelperUID),
		"-j", "REDIRECT", "--to-ports", port}
	if err := iptables(ctx, netns, append([]string{"-A"}, rule...)...); err != nil {
		ln.Close()
		return nil, err
	}
	fctx, cancel := context.WithCancel(context.Background())
	f := &loopbackForwarder{netns: netns, ln: ln, rule: rule, cancel: cancel}
	f.wg.Add(1)
	go f.serve(fctx, boxName)
	return f, nil
}

func (f *loopbackForwarder) serve(ctx context.Context, boxName string) {
	defer f.wg.Done()
	slots := make(chan struct{}, maxForwarded)
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return // Closed.
		}
		select {
		case slots <- struct{}{}:
		default:
			log.G(ctx).Warnf("port-forward into box %s: %d connections already forwarded, "+
				"closing a new one", boxName, maxForwarded)
			conn.Close()
			continue
		}
		f.wg.Add(1)
		go func() {
			defer func() { <-slots; f.wg.Done() }()
			forward(ctx, boxName, conn.(*net.TCPConn))
		}()
	}
}

// originalPort is the port a redirected connection was made to.
func originalPort(conn *net.TCPConn) (int, error) {
	raw, err := conn.SyscallConn()
	if err != nil {
		return 0, err
	}
	var port int
	var gerr error
	err = raw.Control(func(fd uintptr) {
		// A sockaddr_in: the family, then the port in network order.
		var addr *unix.IPv6Mreq
		addr, gerr = unix.GetsockoptIPv6Mreq(int(fd), unix.IPPROTO_IP, unix.SO_ORIGINAL_DST)
		if gerr == nil {
			port = int(binary.BigEndian.Uint16(addr.Multiaddr[2:4]))
		}
	})
	if err == nil {
		err = gerr
	}
	return port, err
}

// forward carries conn to its original port in the box: the tunnel CLI gets the socket as
// its stdin and stdout (the end of stdin is a half close; it ends when the box's side does).
func forward(ctx context.Context, boxName string, conn *net.TCPConn) {
	defer conn.Close()
	port, err := originalPort(conn)
	if err != nil {
		log.G(ctx).WithError(err).Warn("port-forward: the connection's original port")
		return
	}
	if port == conn.LocalAddr().(*net.TCPAddr).Port {
		return // Made to the listener itself, not redirected: nothing asked a port.
	}
	file, err := conn.File()
	if err != nil {
		log.G(ctx).WithError(err).Warn("port-forward: the connection's socket")
		return
	}
	defer file.Close()
	cmd := exec.CommandContext(ctx, cliPath(), "network", "tunnel", boxName, strconv.Itoa(port))
	cmd.Env = cliEnv()
	cmd.Stdin, cmd.Stdout = file, file
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		log.G(ctx).WithError(err).Debugf("port-forward to port %d of box %s: %s", port, boxName,
			strings.TrimSpace(stderr.String()))
	}
}

// Close ends the tunnels and the listener, then removes the redirect (the namespace may
// already be gone with the pod: then so is the rule).
func (f *loopbackForwarder) Close(ctx context.Context) {
	f.ln.Close()
	f.cancel()
	f.wg.Wait()
	if err := iptables(ctx, f.netns, append([]string{"-D"}, f.rule...)...); err != nil {
		log.G(ctx).WithError(err).Debug("remove the port-forward redirect")
	}
}
