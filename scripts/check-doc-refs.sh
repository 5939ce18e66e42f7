#!/usr/bin/env bash
# Docs that tell the truth: fails when a comment or doc cites a Markdown file that is not in
# this repository (a path to a *.md that does not exist, "../shared", or the names of notes
# kept outside the tree: the design, style, API, upstream-API and guest notes), and when the
# one-hop index of docs/contributing.md §7 is out of date (scripts/gen-index.py --check).
# Run by `make test` (scripts/test.sh). A citation is checked relative to the repository
# root and to the citing file's directory (Markdown links such as [errors](errors.md)).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
python3 - "$here" <<'EOF'
import os
import re
import sys

repo = sys.argv[1]
roots = ["src", "agent", "python", "include", "docs", "tests", "scripts", "bench", "fuzz",
         "guest", "CMakeLists.txt", "README.md", "Makefile"]
skip_dirs = {"build", ".pysdk", "__pycache__", ".git", "corpus", "data"}
text_ext = (".cc", ".h", ".c", ".py", ".pyi", ".md", ".sh", ".txt", ".cmake", ".toml",
            ".cfg", ".ini", ".config", ".json", ".yaml", ".yml", "Makefile")
md_ref = re.compile(r"(?<![\w/.}-])((?:\.\./|\./)?[\w./-]*[\w-]\.md)\b")
outside = re.compile(r"\.\./shared|\b(?:DESIGN|STYLE|UPSTREAM-API|GUEST-NOTES)\b(?!\.md)|(?<![\w/.-])API" r"\.md\b")


def files():
    for root in roots:
        path = os.path.join(repo, root)
        if os.path.isfile(path):
            yield path
            continue
        for d, dirs, names in os.walk(path):
            dirs[:] = [x for x in dirs if x not in skip_dirs and not x.endswith(".egg-info")]
            for n in names:
                if n.endswith(text_ext) or n == "CMakeLists.txt":
                    yield os.path.join(d, n)


bad = []
for path in files():
    rel = os.path.relpath(path, repo)
    if rel == "scripts/check-doc-refs.sh":
        continue  # They name the outside notes to find and replace them.
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        continue
    for no, line in enumerate(lines, 1):
        for m in outside.finditer(line):
            bad.append(f"{rel}:{no}: cites {m.group(0)!r}, which is not in this repository")
        for m in md_ref.finditer(line):
            ref = m.group(1)
            if ref.startswith(("http", "www.")) or "://" in line[max(0, m.start() - 40):m.start()]:
                continue
            target = ref.split("#")[0]
            if os.path.exists(os.path.join(repo, target)) or \
               os.path.exists(os.path.join(os.path.dirname(path), target)):
                continue
            bad.append(f"{rel}:{no}: cites {ref}, which does not exist")
for line in sorted(set(bad)):
    print(line)
if bad:
    print(f"check-doc-refs: {len(set(bad))} citation(s) of files outside the repository or "
          "missing; cite docs/design.md, docs/contributing.md, docs/python.md or docs/cli.md",
          file=sys.stderr)
    sys.exit(1)
EOF
python3 "$here/scripts/gen-index.py" --check
