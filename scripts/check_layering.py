#!/usr/bin/env python3
# The layering check: which part of the tree may include which. The allowed graph below is
# the one place it is written down; docs/design.md describes the layers, and this
# check (a `unit` ctest, so `make unit` and `make test` run it) keeps the code to them.
#
# Direction: base <- sys <- protocol <- {image, vmm, net} <- runtime <- {cli, python};
# the guest agent uses base, sys and protocol only; include/boxlite (the public API)
# includes only itself. A module may always include its own headers.
#
# usage: check_layering.py [--root DIR]     exit 0, or 1 with one line per offending include
#        check_layering.py --self-test      checks that a bad include is caught

import argparse
import os
import re
import sys
import tempfile

# module -> modules its non-test code may include.
ALLOWED = {
    "include/boxlite": [],
    "src/base": ["include/boxlite"],
    "src/sys": ["include/boxlite", "src/base"],
    "src/protocol": ["include/boxlite", "src/base"],
    "src/image": ["include/boxlite", "src/base", "src/sys", "src/protocol"],
    # boxlite-net, the per-box network process: a host program beside vmm.
    "src/net": ["include/boxlite", "src/base", "src/sys", "src/protocol"],
    # vmm launches boxlite-net and shares the guest network plan with it.
    "src/vmm": ["include/boxlite", "src/base", "src/sys", "src/protocol", "src/net"],
    # The remote runtime: the public interfaces over HTTP (Runtime::Open dispatches to it).
    "src/remote": ["include/boxlite", "src/base", "src/sys"],
    "src/runtime": ["include/boxlite", "src/base", "src/sys", "src/protocol", "src/image", "src/vmm",
                    "src/net", "src/remote"],
    # The CLI is a user of the public API, plus base's dependency-free helpers (and the
    # server library behind `boxlite serve`, and the remote profiles of src/remote).
    "src/cli": ["include/boxlite", "src/base", "src/server", "src/remote"],
    # `boxlite serve`: the public API, plus the runtime's tmp work directories and the
    # image module's tar name rules.
    "src/server": ["include/boxlite", "src/base", "src/sys", "src/image", "src/runtime"],
    # The Python extension sees the public API only.
    "python/src": ["include/boxlite"],
    # The guest agent (static, PID 1): base, sys and protocol only.
    "agent": ["include/boxlite", "src/base", "src/sys", "src/protocol"],
    # ComputerBox's daemon runs in the user's desktop image: nothing of the host.
    "guest/desktopd": [],
    "bench": ["include/boxlite", "src/base", "src/sys", "src/protocol", "src/image", "src/vmm",
              "src/net", "src/runtime"],
    "fuzz": ["include/boxlite", "src/base", "src/sys", "src/protocol", "src/image", "agent"],
}
# What tests (*_test.cc, *test_util*) may include beyond their module's list.
TEST_EXTRA = {
    # net_helper_test.cc starts the real helper through vmm's launcher.
    "src/net": ["src/vmm"],
}
SOURCE_DIRS = ["include", "src", "agent", "guest", "python/src", "bench", "fuzz"]
SUFFIXES = (".h", ".hpp", ".cc", ".cpp", ".c")
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')


def module_of(rel):
    """The module a repository path belongs to, or None if the check does not cover it."""
    parts = rel.split("/")
    if parts[0] == "src" and len(parts) > 2:
        return "src/" + parts[1]
    if parts[0] == "guest" and len(parts) > 2:
        return "guest/" + parts[1]
    if parts[:2] == ["python", "src"]:
        return "python/src"
    if parts[0] == "include":
        return "include/boxlite"
    if parts[0] in ("agent", "bench", "fuzz"):
        return parts[0]
    return None


def target_of(inc):
    """The module a quoted include names ("src/base/x.h", "boxlite/x.h"), or None."""
    if inc.startswith("boxlite/"):
        return "include/boxlite"
    return module_of(inc)


def is_test(rel):
    name = os.path.basename(rel)
    return "_test." in name or "test_util" in name or name.startswith("test_")


def check(root):
    """Returns the offending includes as messages."""
    errors = []
    for top in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames.sort()
            for name in sorted(filenames):
                if not name.endswith(SUFFIXES):
                    continue
                path = os.path.join(dirpath, name)
                rel = os.path.relpath(path, root)
                mod = module_of(rel)
                if mod is None:
                    continue
                if mod not in ALLOWED:
                    errors.append("%s: module %s is not in the allowed graph of "
                                  "scripts/check_layering.py; add it there" % (rel, mod))
                    continue
                allowed = set(ALLOWED[mod]) | {mod}
                if is_test(rel):
                    allowed |= set(TEST_EXTRA.get(mod, []))
                with open(path, encoding="utf-8", errors="replace") as f:
                    for lineno, line in enumerate(f, 1):
                        m = INCLUDE_RE.match(line)
                        if not m:
                            continue
                        inc = m.group(1)
                        if ".." in inc.split("/"):
                            errors.append("%s:%d: #include \"%s\": include by repository path "
                                          "(\"src/<module>/x.h\"), not a relative one"
                                          % (rel, lineno, inc))
                            continue
                        target = target_of(inc)
                        if target is None:
                            # A file beside this one ("text.h"), or a library's header.
                            continue
                        if target not in allowed:
                            errors.append(
                                "%s:%d: #include \"%s\": %s may not include %s (it may include "
                                "%s; see scripts/check_layering.py)"
                                % (rel, lineno, inc, mod, target,
                                   ", ".join(sorted(allowed - {mod})) or "nothing outside itself"))
    return errors


def self_test():
    """The check passes a tree that keeps the rules and names each include that breaks one."""
    def write(root, rel, text):
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)

    with tempfile.TemporaryDirectory() as root:
        write(root, "src/base/a.h", '#include "boxlite/status.h"\n')
        write(root, "src/sys/b.cc", '#include "src/base/a.h"\n#include <vector>\n')
        write(root, "src/net/net_helper_test.cc", '#include "src/vmm/net_helper.h"\n')
        write(root, "python/src/m.cc", '#include "text.h"\n#include "boxlite/box.h"\n')
        if check(root):
            print("self-test: a tree that keeps the rules failed: %s" % check(root))
            return 1
        write(root, "src/base/bad.cc", '#include "src/sys/fs.h"\n')
        write(root, "agent/bad.cc", '\n#include "src/runtime/box_impl.h"\n')
        write(root, "src/net/helper.cc", '#include "src/vmm/net_helper.h"\n')
        write(root, "src/cli/rel.cc", '#include "../base/strings.h"\n')
        write(root, "src/newmod/x.cc", "\n")
        errors = check(root)
        wanted = ["src/base/bad.cc:1: #include \"src/sys/fs.h\": src/base may not include src/sys",
                  "agent/bad.cc:2: #include \"src/runtime/box_impl.h\": agent may not include "
                  "src/runtime",
                  "src/net/helper.cc:1: #include \"src/vmm/net_helper.h\": src/net may not "
                  "include src/vmm",
                  "src/cli/rel.cc:1: #include \"../base/strings.h\": include by repository path",
                  "src/newmod/x.cc: module src/newmod is not in the allowed graph"]
        for w in wanted:
            if not any(e.startswith(w) for e in errors):
                print("self-test: expected an error starting with %r, got %s" % (w, errors))
                return 1
        if len(errors) != len(wanted):
            print("self-test: unexpected errors: %s" % errors)
            return 1
    print("check_layering self-test: ok")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--self-test", action="store_true")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    errors = check(args.root)
    for e in errors:
        print("layering: " + e, file=sys.stderr)
    if errors:
        print("layering: %d include(s) break the module graph; move the code to a module "
              "that may use it, or change the graph in scripts/check_layering.py with a reason"
              % len(errors), file=sys.stderr)
        return 1
    print("layering: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
