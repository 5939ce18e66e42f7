"""Evaluates the test images' expectations (expect.json, hostile.json checks) inside a
running box: one exec runs a busybox shell script that reports lstat, link targets,
contents, digests and directory entries of every path the checks name, and the
harness's evaluate() compares. Paths are walked one component at a time (cd), so paths
longer than PATH_MAX work too, and names travel as octal escapes, so any byte works.

Images whose result has no busybox (an opaque root, say) get a static busybox copied in
first, under TOOL_DIR, which listings then leave out."""
import base64
import hashlib
import re
import shutil

from harness import oci_model

TOOL_DIR = "/.boxlite-check"
_SAFE = re.compile(rb"^[A-Za-z0-9_.+-]+$")


def _word(b):
    """A shell word for the name `b`, prefixed with ./ so a leading '-' is no option."""
    if _SAFE.match(b):
        return "./" + b.decode()
    # printf with octal escapes; the X sentinel keeps a trailing newline.
    return "\"./$(printf '%sX' | sed '$ s/X$//')\"" % "".join("\\%03o" % c for c in b)


def _walk(path, action):
    """A subshell that walks to `path`'s parent and runs `action NAME` (set -e: any step
    failing fails the whole). Runs of plain names go in one `cd` each of under 3000
    bytes: each cd costs a getcwd, and paths 10,000 levels deep must stay cheap."""
    comps = [c for c in path.split(b"/") if c]
    steps = ["set -e", "cd /"]
    if not comps:
        return "(set -e; cd /; %s .)" % action
    run = []
    for c in comps[:-1] + [None]:
        if c is not None and _SAFE.match(c) and sum(len(x) + 1 for x in run) + len(c) < 3000:
            run.append(c)
            continue
        if run:
            steps.append("cd -P ./" + b"/".join(run).decode())  # -P: no logical PATH_MAX.
            run = []
        if c is not None:
            if _SAFE.match(c):
                run.append(c)
            else:
                steps.append("cd -P " + _word(c))
    steps.append("%s %s" % (action, _word(comps[-1])))
    return "(" + "\n".join(steps) + "\n)"


STAT = "stat -c '%F|%a|%u|%g|%s|%Y|%h|%d:%i|%t|%T|%b'"


class GuestAccessor:
    """oci_model's accessor interface, answered by the guest in one round trip."""

    def __init__(self, exec_fn, checks):
        self._exec = exec_fn
        self._paths = {}
        for c in checks:
            p = oci_model.check_path(c)
            need = self._paths.setdefault(p, set())
            if "target" in c:
                need.add("target")
            if "content" in c or "content_b64" in c or "sha256" in c:
                need.add("content")
            for off, b64 in c.get("data_at", []):
                need.add(("at", off, len(base64.b64decode(b64))))
            if "entries" in c or "entry_count" in c:
                need.add("entries")
            if "same_inode_as" in c:
                self._paths.setdefault(c["same_inode_as"].encode(), set())
        self._facts = self._collect()

    def _collect(self):
        lines = []
        order = list(self._paths)
        for i, p in enumerate(order):
            need = self._paths[p]
            lines.append("echo '@%d'" % i)
            lines.append("%s 2>/dev/null || echo MISSING" % _walk(p, STAT))
            if "target" in need:
                lines.append("echo T; %s 2>/dev/null | base64 -w0; echo" % _walk(p, "readlink"))
            if "content" in need:
                lines.append("echo C; %s 2>/dev/null | base64 -w0; echo" % _walk(p, "cat"))
            if "entries" in need:
                lines.append("echo E; %s 2>/dev/null | base64 -w0; echo" % _walk(p, "ls -A1"))
            for item in sorted(x for x in need if isinstance(x, tuple)):
                _, off, n = item
                lines.append("echo A%d; %s 2>/dev/null | base64 -w0; echo" %
                             (off, _walk(p, "dd bs=1 skip=%d count=%d 2>/dev/null if=" % (off, n)
                                         ).replace("if= ./", "if=./")))
        out = self._exec("\n".join(lines) + "\n")
        facts = {}
        cur = None
        pending = None
        for line in out.split(b"\n"):
            if line.startswith(b"@") and line[1:].isdigit():
                cur = facts.setdefault(order[int(line[1:])], {})
                pending = "stat"
                continue
            if cur is None:
                continue
            if pending == "stat":
                cur["stat"] = None if line == b"MISSING" else line
                pending = None
            elif pending is None and (line in (b"T", b"C", b"E") or
                                      (line.startswith(b"A") and line[1:].isdigit())):
                pending = line.decode()
            elif pending is not None:
                cur[pending] = base64.b64decode(line)
                pending = None
        return facts

    def lstat(self, path):
        raw = self._facts.get(path, {}).get("stat")
        if not raw:
            return None
        f = raw.decode(errors="replace").split("|")
        kind = {"regular file": "file", "regular empty file": "file", "directory": "dir",
                "symbolic link": "symlink", "fifo": "fifo", "character special file": "chardev",
                "block special file": "blockdev"}.get(f[0], f[0])
        s = oci_model.Stat()
        s.type = kind
        s.mode = int(f[1], 8)
        s.uid, s.gid, s.size = int(f[2]), int(f[3]), int(f[4])
        s.mtime_ns = int(f[5]) * 10 ** 9
        s.nlink = int(f[6])
        s.identity = f[7]
        s.rdev = (int(f[8], 16), int(f[9], 16))
        s.allocated = int(f[10]) * 512
        return s

    def readlink(self, path):
        target = self._facts[path].get("T", b"")
        return target[:-1] if target.endswith(b"\n") else target  # readlink's newline.

    def read(self, path, off=0, n=None):
        facts = self._facts[path]
        if n is not None and ("A%d" % off) in facts:
            return facts["A%d" % off]
        data = facts.get("C", b"")
        return data[off:] if n is None else data[off:off + n]

    def sha256(self, path):
        return hashlib.sha256(self._facts[path].get("C", b"")).hexdigest()

    def listdir(self, path):
        names = [e for e in self._facts[path].get("E", b"").split(b"\n") if e]
        if path.strip(b"/") == b"":
            # What the runtime adds at the root, not the image: our tools, the mount
            # points of /proc, /sys and /dev, and ext4's lost+found.
            added = {TOOL_DIR[1:].encode(), b"proc", b"sys", b"dev", b"lost+found"}
            names = [n for n in names if n not in added]
        return names

    def xattrs(self, path):
        raise NotImplementedError("xattrs are checked on the box's disk image")


def guest_checks(checks):
    """The checks with the parts a busybox shell cannot see removed (nanosecond mtimes,
    xattrs)."""
    return [{k: v for k, v in c.items() if k not in ("mtime_ns", "xattrs")} for c in checks]


def busybox_binary():
    """The host's static busybox (Debian busybox-static), copied into boxes without one."""
    for path in ("/bin/busybox", "/usr/bin/busybox"):
        if shutil.which(path):
            return path
    raise RuntimeError("busybox-static is not installed")


def shell_command(with_tools):
    """The argv that runs the check script read from stdin."""
    if not with_tools:
        return ["/bin/busybox", "sh"]
    return [TOOL_DIR + "/busybox", "sh", "-c",
            f"{TOOL_DIR}/busybox mkdir -p {TOOL_DIR}/bin && "
            f"{TOOL_DIR}/busybox --install -s {TOOL_DIR}/bin && "
            f"PATH={TOOL_DIR}/bin exec {TOOL_DIR}/busybox sh"]
