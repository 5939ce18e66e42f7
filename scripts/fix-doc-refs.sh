#!/usr/bin/env bash
# Rewrites citations of notes that are not in the repository to the docs that are, in
# comments and docs under the given paths (default: every tree scripts/check-doc-refs.sh
# checks). Idempotent: a second run changes nothing. Prints each file it changes.
#   DESIGN.md §N, DESIGN §N     -> docs/design.md §N (same numbering)
#   (DESIGN: topic)             -> (docs/design.md §8, topic)
#   STYLE.md §2                 -> docs/design.md §3 (the dependency rules)
#   STYLE.md §3..§8             -> docs/contributing.md §3.2..§3.8 (errors, resources,
#                                  names, comments, tests, build); STYLE.md -> §3
#   API.md                      -> docs/cli.md under src/cli/, docs/python.md elsewhere
#   UPSTREAM-API(.md) [§N]      -> docs/python.md (its BoxLite 0.9 sections)
#   GUEST-NOTES(.md)            -> docs/benchmarks.md
#   docs/architecture.md        -> docs/design.md
#   docs/python-sdk.md          -> docs/python.md
#   docs/guest-kernel.md        -> docs/design.md §1
#   ../shared/ or /work/shared/ before any of these names is dropped.
# Usage: scripts/fix-doc-refs.sh [PATH...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
if [ $# -eq 0 ]; then
  set -- src agent python include docs tests scripts bench fuzz guest CMakeLists.txt README.md Makefile
fi
common=(
  -e 's#(\.\./)+shared/##g'
  -e 's#/work/shared/##g'
  -e 's#\bDESIGN\.md#docs/design.md#g'
  -e 's#\bDESIGN §#docs/design.md §#g'
  -e 's#\(DESIGN: #(docs/design.md §8, #g'
  -e 's#\bSTYLE\.md §2\b#docs/design.md §3#g'
  -e 's#\bSTYLE\.md §([3-8])\b#docs/contributing.md §3.\1#g'
  -e 's#\bSTYLE\.md( §9)?#docs/contributing.md §3#g'
  -e 's#\bUPSTREAM-API(\.md)?( §[0-9][0-9.]*[0-9])?#docs/python.md#g'
  -e 's#\bGUEST-NOTES(\.md)?#docs/benchmarks.md#g'
  -e 's#docs/architecture\.md#docs/design.md#g'
  -e 's#docs/python-sdk\.md#docs/python.md#g'
  -e 's#docs/guest-kernel\.md#docs/design.md §1#g'
)
find "$@" \( -name build -o -name .pysdk -o -name .git -o -name __pycache__ -o -name corpus \) -prune -o \
     -type f \( -name '*.cc' -o -name '*.h' -o -name '*.c' -o -name '*.py' -o -name '*.pyi' \
     -o -name '*.md' -o -name '*.sh' -o -name '*.txt' -o -name '*.cmake' -o -name '*.toml' \
     -o -name '*.config' -o -name Makefile \) -print |
  grep -v -e '^scripts/fix-doc-refs.sh$' -e '^scripts/check-doc-refs.sh$' |
  while read -r f; do
    case "$f" in
      src/cli/*) api=docs/cli.md ;;
      *) api=docs/python.md ;;
    esac
    new=$(sed -E "${common[@]}" -e "s#(^|[^-A-Za-z0-9_/.])API\\.md#\\1${api}#g" "$f") || exit 1
    if [ "$new" != "$(cat "$f")" ]; then
      printf '%s\n' "$new" > "$f"
      echo "$f"
    fi
  done
