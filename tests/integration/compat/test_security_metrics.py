"""BoxLite 0.9's advanced options and metrics in real boxes: capabilities (Docker's set,
add/drop, ALL) seen in /proc/self/status and enforced, resource limits seen in
/proc/self/limits and enforced, a box without network, descriptors closed at exec, health
checks that probe the guest (healthy, unhealthy while the VM is frozen, healthy again) and
metrics that move with real work.

The boxes boot from the built-in image boxlite/base and are shared by the module (booted
together); the health test runs last, as it freezes one box's VM for a while.
"""
import asyncio
import http.server
import json
import os
import signal
import threading
import time

import pytest

import boxlite  # noqa: E402  (the SDK under test; main's install or PYTHONPATH)

IMAGE = "boxlite/base"
MEMORY = 256
PAYLOAD = 200_000  # Bytes the host server sends to the box.
FILE_LIMIT = 1 << 20

# Capability numbers (include/uapi/linux/capability.h).
CAP = {"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "FSETID": 4, "KILL": 5, "SETGID": 6,
       "SETUID": 7, "SETPCAP": 8, "NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13,
       "SYS_CHROOT": 18, "SYS_ADMIN": 21, "MKNOD": 27, "AUDIT_WRITE": 29, "SETFCAP": 31}
DOCKER_DEFAULT = sum(1 << CAP[n] for n in (
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID", "SETUID",
    "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE"))


class Payload(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(PAYLOAD))
        self.end_headers()
        self.wfile.write(b"x" * PAYLOAD)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def web():
    """An HTTP server on the host's loopback; a box with allow_host reaches it at 10.0.2.2."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Payload)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def _options(name, **advanced):
    network = boxlite.NetworkSpec("nat", allow_host=True) if name == "limited" else "nat"
    return boxlite.BoxOptions(image=IMAGE, memory=MEMORY, network=network,
                              advanced=boxlite.AdvancedBoxOptions(**advanced) if advanced else None)


@pytest.fixture(scope="module")
def boxes(loop, tmp_path_factory):
    """Four boxes of one runtime, booted together:
    plain: no advanced options (Docker's capability set);
    limited: add NET_ADMIN, drop CHOWN; rlimits; a fast health check; reaches the host;
    dropped: drop ALL + add KILL; no network; a health check that never probes yet;
    everything: add ALL, drop SYS_ADMIN."""
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path_factory.mktemp("secmetrics-home"))))
    specs = {
        "plain": {},
        "limited": dict(
            capabilities=boxlite.ContainerCapabilities(add=["net_admin"], drop=["CAP_CHOWN"]),
            security=boxlite.SecurityOptions(max_open_files=256, max_file_size=FILE_LIMIT,
                                             max_processes=512, max_cpu_time=3600),
            health_check=boxlite.HealthCheckOptions(interval=1, timeout=2, retries=2, start_period=0)),
        "dropped": dict(
            capabilities=boxlite.ContainerCapabilities(add=["KILL"], drop=["all"]),
            security=boxlite.SecurityOptions(network_enabled=False),
            health_check=boxlite.HealthCheckOptions(interval=3600, timeout=10, retries=3, start_period=0)),
        "everything": dict(capabilities=boxlite.ContainerCapabilities(add=["ALL"], drop=["SYS_ADMIN"])),
    }

    async def boot():
        made = {name: await rt.create(_options(name, **adv)) for name, adv in specs.items()}
        await asyncio.gather(*(b.start() for b in made.values()))
        return made

    made = loop.run_until_complete(boot())
    yield rt, made

    async def stop():
        await asyncio.gather(*(b.stop() for b in made.values()), return_exceptions=True)

    loop.run_until_complete(stop())


def sh(loop, box, script, user=None, stdin=b""):
    """Runs `sh -c script` (stderr folded into stdout): (exit code, output text)."""
    async def run():
        ex = await box.stream("sh", "-c", script + " 2>&1", user=user)
        if stdin:
            await ex.write_stdin(stdin)
        await ex.close_stdin()
        out = b""
        async for chunk in ex.stdout():
            out += chunk if isinstance(chunk, bytes) else chunk.encode()
        result = await ex.wait()
        return result.exit_code, out.decode(errors="replace")
    return loop.run_until_complete(run())


def caps(loop, box, user=None):
    """CapBnd, CapEff, CapPrm and CapInh of a fresh process in the box."""
    rc, out = sh(loop, box, "grep ^Cap /proc/self/status", user=user)
    assert rc == 0, out
    fields = dict(line.split(":\t") for line in out.splitlines() if ":\t" in line)
    return {k: int(v, 16) for k, v in fields.items()}


def test_default_box_has_dockers_capabilities(loop, boxes):
    _, b = boxes
    c = caps(loop, b["plain"])
    assert c["CapBnd"] == DOCKER_DEFAULT and c["CapEff"] == DOCKER_DEFAULT, c
    assert c["CapPrm"] == DOCKER_DEFAULT and c["CapInh"] == 0 and c["CapAmb"] == 0, c
    # A capability outside the set really is missing: no raw network configuration.
    rc, out = sh(loop, b["plain"], "ip link set lo mtu 1400")
    assert rc != 0 and "not permitted" in out.lower(), out


def test_add_and_drop_named_capabilities(loop, boxes):
    _, b = boxes
    want = (DOCKER_DEFAULT | 1 << CAP["NET_ADMIN"]) & ~(1 << CAP["CHOWN"])
    c = caps(loop, b["limited"])
    assert c["CapBnd"] == want and c["CapEff"] == want, c
    # Without CAP_CHOWN root cannot give a file away; with NET_ADMIN it can set an MTU.
    rc, out = sh(loop, b["limited"], "touch /tmp/f && chown 1:1 /tmp/f")
    assert rc != 0 and "not permitted" in out.lower(), out
    rc, out = sh(loop, b["plain"], "touch /tmp/f && chown 1:1 /tmp/f && stat -c %u /tmp/f")
    assert rc == 0 and out.strip() == "1", out
    rc, out = sh(loop, b["limited"], "ip link set lo mtu 1400 && cat /sys/class/net/lo/mtu")
    assert rc == 0 and out.strip() == "1400", out
    # Another user keeps the bounding set but holds nothing.
    c = caps(loop, b["limited"], user="1000:1000")
    assert c["CapBnd"] == want and c["CapEff"] == 0 and c["CapPrm"] == 0, c


def test_drop_all_and_add_all(loop, boxes):
    _, b = boxes
    c = caps(loop, b["dropped"])
    assert c["CapBnd"] == 1 << CAP["KILL"] and c["CapEff"] == 1 << CAP["KILL"], c
    rc, out = sh(loop, b["dropped"], "cat /proc/sys/kernel/cap_last_cap")
    everything = (1 << (int(out) + 1)) - 1
    c = caps(loop, b["everything"])
    assert c["CapBnd"] == everything & ~(1 << CAP["SYS_ADMIN"]), c
    assert c["CapEff"] == c["CapBnd"], c
    rc, out = sh(loop, b["everything"], "mount -t tmpfs none /mnt")
    assert rc != 0, out  # mount needs CAP_SYS_ADMIN, the one drop.


def test_resource_limits_are_set_and_enforced(loop, boxes):
    _, b = boxes
    rc, out = sh(loop, b["limited"], "cat /proc/self/limits")
    limits = {line[:26].strip(): line[26:].split()[:2] for line in out.splitlines()[1:]}
    assert limits["Max open files"] == ["256", "256"], out
    assert limits["Max file size"] == [str(FILE_LIMIT)] * 2, out
    assert limits["Max processes"] == ["512", "512"], out
    assert limits["Max cpu time"] == ["3600", "3600"], out
    # The same for a process of another user, and in the default box: the guest's own.
    rc, out = sh(loop, b["limited"], "ulimit -n", user="1000:1000")
    assert out.strip() == "256", out
    rc, out = sh(loop, b["plain"], "ulimit -n")
    assert out.strip() != "256", out
    # Writing past max_file_size fails; the file stops at the limit.
    rc, out = sh(loop, b["limited"],
                 "dd if=/dev/zero of=/root/big bs=65536 count=32; echo rc=$?; stat -c %s /root/big")
    assert "rc=0" not in out, out
    assert out.strip().splitlines()[-1] == str(FILE_LIMIT), out


def test_closed_descriptors_and_no_network(loop, boxes):
    _, b = boxes
    # Only 0, 1, 2 (and ls's own directory handle) are open in a new process.
    rc, out = sh(loop, b["plain"], "ls /proc/self/fd")
    assert out.split() == ["0", "1", "2", "3"], out
    rc, out = sh(loop, b["dropped"], "ls /sys/class/net")
    assert out.split() == ["lo"], out
    rc, out = sh(loop, b["plain"], "ls /sys/class/net")
    assert "eth0" in out.split(), out


def test_box_metrics_move_with_work(loop, boxes, web):
    rt, b = boxes
    box = b["limited"]
    before = loop.run_until_complete(box.metrics())
    assert before.memory_bytes and before.memory_bytes > 16 << 20, before
    assert before.total_create_duration_ms >= before.guest_boot_duration_ms > 0, before
    stages = [before.stage_filesystem_setup_ms, before.stage_image_prepare_ms,
              before.stage_guest_rootfs_ms, before.stage_box_config_ms,
              before.stage_box_spawn_ms, before.stage_container_init_ms]
    assert all(s is not None and s >= 0 for s in stages), before
    assert sum(stages) <= before.total_create_duration_ms + len(stages), before
    # Our names are still there.
    assert before.execs_run == before.commands_executed_total and before.boot_seconds > 0

    # 5000 bytes in, 3000 out, a busy second of CPU, and PAYLOAD bytes from the host.
    rc, out = sh(loop, box, "wc -c; head -c 3000 /dev/zero | tr '\\0' y", stdin=b"z" * 5000)
    assert out.startswith("5000") and out.count("y") == 3000, out
    rc, out = sh(loop, box, "end=$(($(date +%s)+2)); while [ $(date +%s) -lt $end ]; do :; done; "
                            f"wget -q -O - http://10.0.2.2:{web}/ | wc -c")
    assert out.strip() == str(PAYLOAD), out
    rc, out = sh(loop, box, "exit 3")
    assert rc == 3
    with pytest.raises(boxlite.BoxliteError):
        loop.run_until_complete(box.stream("true", user="no-such-user"))
    after = loop.run_until_complete(box.metrics())

    assert after.commands_executed_total == before.commands_executed_total + 3, after
    assert after.exec_errors_total == before.exec_errors_total + 1, after
    assert after.bytes_sent_total - before.bytes_sent_total == 5000, after
    assert after.bytes_received_total - before.bytes_received_total >= 3000 + len(str(PAYLOAD)), after
    # The busy loop ran for two seconds of this interval: clearly more than idle.
    assert after.cpu_percent is not None and after.cpu_percent > 5, after
    assert after.network_bytes_received - before.network_bytes_received >= PAYLOAD, after
    assert after.network_bytes_sent > before.network_bytes_sent, after
    assert after.network_tcp_connections >= before.network_tcp_connections + 1, after
    assert after.network_tcp_errors is not None


def test_runtime_metrics_and_health_none(loop, boxes):
    rt, b = boxes
    m = loop.run_until_complete(rt.metrics())
    assert m.boxes_created_total == 4 and m.num_running_boxes == 4, m
    assert m.boxes_failed_total == 0 and m.boxes_stopped_total == 0, m
    sh(loop, b["plain"], "true")
    m2 = loop.run_until_complete(rt.metrics())
    assert m2.total_commands_executed == m.total_commands_executed + 1, m2
    assert m2.total_exec_errors >= 1, m2  # The failed start in the metrics test.
    # A box without a health check, and one whose first probe is an hour away.
    info = loop.run_until_complete(b["plain"].info())
    assert info.health_status.state == boxlite.HealthState.none() and info.health_status.last_check is None
    info = loop.run_until_complete(b["dropped"].info())
    assert info.health_status.state.is_starting(), info
    assert info.network == "none" and info.network.mode == "disabled", info
    assert info.state == "running" and info.state.running and info.state.pid == info.pid > 0
    # Stopping a box counts.
    loop.run_until_complete(b["everything"].stop())
    m3 = loop.run_until_complete(rt.metrics())
    assert m3.boxes_stopped_total == 1 and m3.num_running_boxes == 3, m3


# --- Without a VM: the classes and the core's checks.

def test_security_presets_and_core_arguments():
    sec = boxlite.SecurityOptions()
    assert (sec.jailer_enabled, sec.seccomp_enabled, sec.network_enabled, sec.close_fds) == (False, False, True, True)
    assert boxlite.SecurityOptions.development().close_fds is False
    std = boxlite.SecurityOptions.standard()
    assert std.jailer_enabled and std.seccomp_enabled and std.max_open_files is None
    top = boxlite.SecurityOptions.maximum()
    assert (top.max_open_files, top.max_file_size, top.max_processes) == (1024, 1 << 30, 100)
    hc = boxlite.HealthCheckOptions()
    assert (hc.interval, hc.timeout, hc.retries, hc.start_period) == (30, 10, 3, 60)
    caps = boxlite.ContainerCapabilities()
    assert caps.add == [] and caps.drop == []
    adv = boxlite.AdvancedBoxOptions(security=top, health_check=boxlite.HealthCheckOptions(interval=5.0),
                                     capabilities=boxlite.ContainerCapabilities(add=["NET_ADMIN"]))
    args = adv._core_args()
    assert args["security"]["max_processes"] == 100 and args["security"]["max_memory"] is None
    assert args["health_check"] == {"enabled": True, "interval_s": 5, "timeout_s": 10, "retries": 3,
                                    "start_period_s": 60}
    assert args["capabilities"] == {"add": ["NET_ADMIN"], "drop": []}
    assert boxlite.AdvancedBoxOptions()._core_args() == {"security": None, "capabilities": None,
                                                        "health_check": None}
    assert boxlite.BoxOptions(image=IMAGE, advanced=adv).advanced is adv
    with pytest.raises(boxlite.ConfigError, match="AdvancedBoxOptions"):
        boxlite.BoxOptions(image=IMAGE, advanced={"security": {}})


@pytest.mark.parametrize("advanced, message", [
    (dict(capabilities=boxlite.ContainerCapabilities(add=["FLY"])), 'unknown capability "FLY" in capabilities.add'),
    (dict(capabilities=boxlite.ContainerCapabilities(drop=["cap_"])), "capabilities.drop"),
    (dict(security=boxlite.SecurityOptions(max_open_files=0)), "security.max_open_files must be between 1"),
    (dict(security=boxlite.SecurityOptions(max_file_size=-1)), "security.max_file_size must be a positive integer"),
    (dict(security=boxlite.SecurityOptions(max_memory="lots")), "security.max_memory must be an integer"),
    (dict(health_check=boxlite.HealthCheckOptions(interval=0)), "health_check.interval must be between 1"),
    (dict(health_check=boxlite.HealthCheckOptions(retries=0)), "health_check.retries must be between 1"),
    (dict(health_check=boxlite.HealthCheckOptions(timeout=0.5)), "health_check.timeout_s must be an integer"),
])
def test_bad_advanced_options_are_config_errors(loop, tmp_path, advanced, message):
    """The core's checks, at BoxOptions() (core.validate_box_options) or at create."""
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "home")))
    with pytest.raises(boxlite.ConfigError, match=message):
        opts = boxlite.BoxOptions(image=IMAGE, advanced=boxlite.AdvancedBoxOptions(**advanced))
        loop.run_until_complete(rt.create(opts))
    # Nothing was created.
    assert loop.run_until_complete(rt.metrics()).boxes_created_total == 0
    assert loop.run_until_complete(rt.list_info()) == []


def test_no_network_with_ports_is_a_config_error(loop, tmp_path):
    rt = boxlite.Boxlite(boxlite.Options(home_dir=str(tmp_path / "home")))
    with pytest.raises(boxlite.ConfigError, match="published ports need the network"):
        opts = boxlite.BoxOptions(image=IMAGE, ports=[(0, 80)], advanced=boxlite.AdvancedBoxOptions(
            security=boxlite.SecurityOptions(network_enabled=False)))
        loop.run_until_complete(rt.create(opts))


def test_health_state_and_info_classes():
    assert boxlite.HealthState.healthy().value == "healthy" and str(boxlite.HealthState.none()) == "none"
    for value in ("none", "starting", "healthy", "unhealthy"):
        state = getattr(boxlite.HealthState, value)()
        assert [getattr(state, f"is_{v}")() for v in ("none", "starting", "healthy", "unhealthy")] == \
            [v == value for v in ("none", "starting", "healthy", "unhealthy")]
    core = {"id": "0123456789ab", "name": "web", "image": "alpine:latest", "state": "running",
            "created_unix": 0, "cpus": 2, "memory_mib": 512, "disk_size_mib": 0, "network": "nat",
            "ports": [(8080, 80)], "mounts": [], "auto_remove": True, "detach": False, "pid": 42,
            "accel": "kvm", "health": {"state": "unhealthy", "failures": 3, "last_check_unix": 60}}
    info = boxlite.BoxInfo._from_core(core)
    assert info.state == "running" and info.state.status == "running" and info.state.running
    assert info.state.pid == 42 and info.created_at == "1970-01-01T00:00:00Z"
    assert info.network == "nat" and info.network.mode == "enabled" and info.network.allow_net == []
    assert info.network.published_ports == [boxlite.PublishedPort(guest_port=80, host_ip="127.0.0.1",
                                                                  host_port=8080, protocol="tcp")]
    assert info.health_status.state.is_unhealthy() and info.health_status.failures == 3
    assert info.health_status.last_check == "1970-01-01T00:01:00Z"
    shown = json.loads(repr(info))
    assert shown["state"] == {"status": "running", "running": True, "pid": 42}
    assert shown["health_status"]["state"] == "unhealthy" and shown["network"]["mode"] == "enabled"
    # Built the older way, with plain strings.
    old = boxlite.BoxInfo(id="x", name="x", image="i", state="stopped", network="none")
    assert old.state.status == "stopped" and not old.state.running and old.network.mode == "disabled"
    assert old.health_status.state.is_none()


def _wait_health(loop, box, want, timeout=90):
    deadline = time.monotonic() + timeout
    while True:
        status = loop.run_until_complete(box.info()).health_status
        if status.state.value == want:
            return status
        assert time.monotonic() < deadline, f"health stayed {status}, wanted {want}"
        time.sleep(0.5)


def test_health_check_probes_the_guest(loop, boxes):
    """Healthy while the agent answers; unhealthy after `retries` failed probes while the
    VM is frozen (SIGSTOP from the host); healthy again once it runs."""
    _, b = boxes
    box = b["limited"]
    status = _wait_health(loop, box, "healthy")
    assert status.failures == 0 and status.last_check, status
    pid = loop.run_until_complete(box.info()).pid
    os.kill(pid, signal.SIGSTOP)
    try:
        status = _wait_health(loop, box, "unhealthy")
        assert status.failures >= 2, status
    finally:
        os.kill(pid, signal.SIGCONT)
    status = _wait_health(loop, box, "healthy")
    assert status.failures == 0 and str(status.state) == "healthy", status
