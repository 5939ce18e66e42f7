"""Evaluates the test images' expectations (expect.json, hostile.json checks) inside a
running box: one exec runs a busybox shell script that reports lstat, link targets,
contents, digests and directory entries of every path the checks name, and the
harness's evaluate() compares. Paths are walked one component at a time (cd), so paths
longer than PATH_MAX work too, and names travel as octal escapes, so any byte works."""
import base64
import hashlib

from harness import oci_model


def _sh_bytes(b):
    """A shell word that evaluates to exactly the bytes `b` (via printf, with a sentinel
    so a trailing newline survives command substitution)."""
    return "\"$(printf '%sX')\"" % "".join("\\%03o" % c for c in b)


def _walk_and(path, action):
    comps = [c for c in path.split(b"/") if c]
    if not comps:
        return "cd / && %s ." % action
    parts = ["cd /"]
    for c in comps[:-1]:
        parts.append("{ d=%s; cd \"./${d%%X}\"; }" % _sh_bytes(c))
    # "./" keeps names that start with '-' from being read as options.
    parts.append("{ n=%s; n=\"${n%%X}\"; %s \"./$n\"; }" % (_sh_bytes(comps[-1]), action))
    return " && ".join(parts)


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
            if "content" in c or "content_b64" in c or "data_at" in c or "sha256" in c:
                need.add("content")
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
            lines.append("( %s ) 2>/dev/null || echo MISSING" % _walk_and(p, STAT))
            if "target" in need:
                lines.append("echo T; ( %s | base64 -w0 ) 2>/dev/null; echo" %
                             _walk_and(p, "readlink"))
            if "content" in need:
                lines.append("echo C; ( %s | base64 -w0 ) 2>/dev/null; echo" %
                             _walk_and(p, "cat"))
            if "entries" in need:
                lines.append("echo E; ( %s | base64 -w0 ) 2>/dev/null; echo" %
                             _walk_and(p, "ls -A1 --"))
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
            elif line in (b"T", b"C", b"E") and pending is None:
                pending = line.decode()
            elif pending in ("T", "C", "E"):
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
        data = self._facts[path].get("C", b"")
        return data[off:] if n is None else data[off:off + n]

    def sha256(self, path):
        return hashlib.sha256(self._facts[path].get("C", b"")).hexdigest()

    def listdir(self, path):
        return [e for e in self._facts[path].get("E", b"").split(b"\n") if e]

    def xattrs(self, path):
        raise NotImplementedError("xattrs are checked on the box's disk image")


def unchecked_in_guest(checks):
    """Checks the guest cannot answer from a shell (nanosecond mtimes, xattrs)."""
    return [c for c in checks if "mtime_ns" in c or "xattrs" in c]


def guest_checks(checks):
    """The checks with the parts a busybox shell cannot see removed."""
    out = []
    for c in checks:
        c = {k: v for k, v in c.items() if k not in ("mtime_ns", "xattrs")}
        out.append(c)
    return out
