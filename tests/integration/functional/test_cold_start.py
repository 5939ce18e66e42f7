"""The cold start path: an ephemeral box's disk overlay is a copy of an empty overlay kept
beside the image's base (src/vmm/disk.h), made once per base and size; each box still
gets a disk of its own, of the size asked for, and the template goes with its image."""
import re
from pathlib import Path

BASE = "boxlite/base"
TEMPLATE = re.compile(r"^([^.]+)\.(?:compact\.)?overlay-(\d+)M\.qcow2$")


def templates(home):
    """{size in MiB: file name} of the overlay templates in the store, checking each is
    named after a base file system that is there."""
    rootfs = Path(home) / "images" / "rootfs"
    names = {p.name for p in rootfs.iterdir()} if rootfs.exists() else set()
    found = {}
    for name in names:
        m = TEMPLATE.match(name)
        if m:
            assert any(n.startswith(m.group(1) + ".") and n.endswith(".ext4") for n in names), names
            found[int(m.group(2))] = name
    return found


def test_overlays_from_the_template_are_separate_disks_of_the_size_asked(fresh_cli):
    script = "cat /sys/block/vda/size; cat /marker 2>/dev/null; echo written > /marker"
    first = fresh_cli.run("run", "--rm", BASE, "sh", "-c", script, timeout=300)
    assert first.returncode == 0, first.stderr
    sizes = templates(fresh_cli.home)
    assert len(sizes) == 1, sizes
    size_mib = next(iter(sizes))
    # The guest's disk (512-byte sectors) is the template's size.
    assert first.stdout.decode().split() == [str(size_mib * 2048)]

    # The second box copies the template: the first box's write reached neither.
    second = fresh_cli.run("run", "--rm", BASE, "sh", "-c", script, timeout=300)
    assert second.returncode == 0, second.stderr
    assert second.stdout.decode().split() == [str(size_mib * 2048)]
    assert templates(fresh_cli.home) == sizes

    # Another size has a template of its own.
    other = fresh_cli.run("run", "--rm", "--disk-size", "2G", BASE, "cat", "/sys/block/vda/size",
                          timeout=300)
    assert other.returncode == 0, other.stderr
    assert other.stdout.decode().split() == [str(2048 * 2048)]
    assert set(templates(fresh_cli.home)) == {size_mib, 2048}

    # Removing the image removes its templates with its base: nothing is left behind.
    p = fresh_cli.run("rmi", BASE, timeout=120)
    assert p.returncode == 0, p.stderr
    rootfs = Path(fresh_cli.home) / "images" / "rootfs"
    assert sorted(p.name for p in rootfs.iterdir()) == []


def test_the_first_command_of_a_box_without_network_has_a_working_loopback(cli):
    """The agent brings up lo beside its other boot work (agent/init.cc MountEarly); the
    box's first command, in a box with no network at all, still finds lo up with 127.0.0.1
    and ::1 and serves and fetches a page over 127.0.0.1."""
    script = ("cat /sys/class/net/lo/flags; grep -c ' lo$' /proc/net/if_inet6; "
              "mkdir /tmp/www && echo page-$((6*7)) > /tmp/www/index.html && "
              "httpd -p 127.0.0.1:8080 -h /tmp/www && wget -q -O - http://127.0.0.1:8080/")
    r = cli.run("run", "--rm", "--network", "none", BASE, "sh", "-c", script, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    flags, inet6, page = r.stdout.decode(errors="replace").split()
    assert int(flags, 16) & 0x1, flags  # IFF_UP
    assert int(inet6) >= 1  # ::1 on lo
    assert page == "page-42"
