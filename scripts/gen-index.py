#!/usr/bin/env python3
"""The one-hop index of docs/contributing.md: where every CLI flag, SDK argument and
BOXLITE_* environment variable is handled, found in the source itself.

  scripts/gen-index.py           rewrites the index between its markers in docs/contributing.md
  scripts/gen-index.py --check   fails (exit 1) when the index there is out of date

Rows come from the declarations (the CLI's FlagSpec tables in src/cli/commands.cc and its
global flags in src/cli/main.cc; the keys of BoxOptionsFromDict in python/src/options_dict.cc
and the keyword arguments of python/boxlite/options.py; every quoted "BOXLITE_*" name in
src/, agent/ and python/), and each row names the functions that read it, found by
searching the source. `make test` runs --check (scripts/check-doc-refs.sh), so a new flag,
option or variable cannot land without its row.
"""
import os
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs/contributing.md"
BEGIN = "<!-- index:begin (scripts/gen-index.py writes this part) -->"
END = "<!-- index:end -->"

CXX_FUNC = re.compile(r"^(?:[A-Za-z_][\w:<>,*&\s]*?\s)?[*&]?([A-Z]\w*(?:::\w+)*)\([^;]*$")
PY_FUNC = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\(")
PY_CLASS = re.compile(r"^class\s+(\w+)")


def _product(name):
    return "_test." not in name and "test_util" not in name and not name.startswith("test_")


def source_files(dirs, exts):
    """Non-test source files under `dirs` (directories or single files)."""
    out = []
    for d in dirs:
        if (REPO / d).is_file():
            out.append(REPO / d)
            continue
        for root, _, files in os.walk(REPO / d):
            out += [Path(root) / f for f in files if f.endswith(exts) and _product(f)]
    return sorted(out)


def enclosing(path, lines, index):
    """The function (C++ or Python) that line `index` of `path` belongs to."""
    if path.suffix == ".py":
        cls = None
        for line in lines[index::-1]:
            m = PY_CLASS.match(line)
            if m:
                cls = m.group(1)
                break
        for line in lines[index::-1]:
            m = PY_FUNC.match(line)
            if m:
                indented = line.startswith((" ", "\t"))
                return f"{cls}.{m.group(1)}" if indented and cls else m.group(1)
        return "(module)"
    for line in lines[index::-1]:
        indent = len(line) - len(line.lstrip(" "))
        if indent > 0 or not line.strip() or line.lstrip().startswith(("//", "#", "}")):
            continue
        line = line.strip()
        if line.split("(")[0].split()[-1:] in (["if"], ["for"], ["while"], ["switch"], ["return"]):
            continue
        m = CXX_FUNC.match(line)
        if m:
            return m.group(1).split("::")[-1]
        if line.startswith(("const ", "static ", "constexpr ")) and "=" in line:
            return line.split("=")[0].split()[-1].strip("*&[]")
    return "(file scope)"


def where(pattern, dirs, exts, follow=True):
    """`file` (function, ...) for every match of `pattern` in the non-test sources. A match
    in a named constant (kFooEnv = "...") is followed to the functions that use it."""
    found = {}
    for path in source_files(dirs, exts):
        lines = path.read_text(errors="replace").splitlines()
        for i, line in enumerate(lines):
            if re.search(pattern, line):
                rel = str(path.relative_to(REPO))
                name = enclosing(path, lines, i)
                if follow and re.fullmatch(r"k[A-Z]\w*", name):
                    for used_rel, used in _where(rf"\b{name}\b(?!\s*=)", dirs, exts).items():
                        for n in used:
                            if n != name and n not in found.setdefault(used_rel, []):
                                found[used_rel].append(n)
                    continue
                found.setdefault(rel, [])
                if name not in found[rel]:
                    found[rel].append(name)
    return found


def where_text(pattern, dirs, exts):
    found = where(pattern, dirs, exts)
    return "; ".join(f"`{f}` {', '.join(n)}" for f, n in sorted(found.items()) if n) or "(not read)"


def _where(pattern, dirs, exts):
    return where(pattern, dirs, exts, follow=False)


def cli_rows():
    text = (REPO / "src/cli/commands.cc").read_text()
    flags = {}
    for m in re.finditer(r'\{"([a-z][a-z-]*)", (?:\'(.)\'|0), (?:true|false), (?:true|false),', text):
        flags.setdefault(m.group(1), m.group(2))
    rows = []
    for name, short in sorted(flags.items()):
        spelled = f"`--{name}`" + (f", `-{short}`" if short else "")
        rows.append((spelled, where_text(rf'\b(?:Has|Get|All|Switch)\("{re.escape(name)}"\)',
                                    ["src/cli"], (".cc",))))
    main = (REPO / "src/cli/main.cc").read_text()
    globals_ = set(re.findall(r'arg == "--([a-z-]+)"', main))
    for m in re.finditer(r'for \(const char\* name : \{([^}]*)\}\)', main):
        globals_ |= set(re.findall(r'"([a-z-]+)"', m.group(1)))
    for name in sorted(globals_):
        rows.append((f"`--{name}` (global)",
                     where_text(rf'"--{re.escape(name)}"|"{re.escape(name)}"', ["src/cli/main.cc"],
                                (".cc",))))
    return rows


# Options given inside another object rather than as a keyword argument of their own.
NESTED = {
    "allow_host": "`network=NetworkSpec(allow_host=True)`",
    "allow_net": "`network=NetworkSpec(allow_net=[...])`",
    "security": "`advanced=AdvancedBoxOptions(security=SecurityOptions(...))`",
    "capabilities": "`advanced=AdvancedBoxOptions(capabilities=ContainerCapabilities(...))`",
    "health_check": "`advanced=AdvancedBoxOptions(health_check=HealthCheckOptions(...))`",
}


def sdk_rows():
    dict_cc = (REPO / "python/src/options_dict.cc").read_text()
    setters = re.findall(r'^\s*\{"([a-z_]+)", &(\w+)', dict_cc, re.M)
    options_py = (REPO / "python/boxlite/options.py").read_text()
    init = options_py[options_py.index("class BoxOptions"):]
    init = init[init.index("def __init__("):init.index(") -> None:")]
    kwargs = re.findall(r"^\s+(\w+):", init, re.M)
    rows = []
    for key, setter in setters:
        spellings = [k for k in kwargs if k == key or
                     re.search(rf'_pick\("{key}", \w+, "{k}"', options_py) or
                     (key == "mounts" and k == "volumes") or
                     (key == "disk_size_mib" and k in ("disk_size", "disk_size_gb"))]
        shown = ", ".join(f"`{k}=`" for k in spellings) or NESTED.get(key, f"(`{key}` key only)")
        used = where_text(rf'(?:options_?|opts|o|box_options|record_\.options)\.{key}\b',
                     ["src/runtime", "src/vmm", "src/net", "src/image"], (".cc",))
        if setter.startswith("Refuse"):
            used = "refused with NotSupportedError (not in this build)"
        rows.append((shown, f"`python/src/options_dict.cc` {setter.split('<')[0]} → "
                            f"`BoxOptions::{key}`; {used}"))
    return rows


def runtime_rows():
    header = (REPO / "include/boxlite/options.h").read_text()
    body = header[header.index("struct RuntimeOptions"):]
    body = body[:body.index("\n};")]
    fields = re.findall(r"^\s+[\w:<>, ]+?\s(\w+)(?:\s*=[^;]*)?;", body, re.M)
    options_py = (REPO / "python/boxlite/options.py").read_text()
    init = options_py[options_py.index("class Options"):]
    init = init[init.index("def __init__("):init.index(") -> None:")]
    kwargs = set(re.findall(r"^\s+(\w+):", init, re.M))
    rows = []
    for field in fields:
        spelled = f"`{field}=`" if field in kwargs else f"(`RuntimeOptions::{field}`)"
        if field == "registries":
            spelled = "`image_registries=[ImageRegistry(...)]`, `--registry`, `--config`"
        rows.append((spelled, where_text(rf"(?:options_?|opts|o)\.{field}\b",
                                         ["src/runtime", "src/image", "src/vmm", "python/src"],
                                         (".cc",))))
    return rows


def env_rows():
    names = set()
    for path in source_files(["src", "agent", "python/boxlite", "python/src"], (".cc", ".h", ".py")):
        names |= set(re.findall(r'"(BOXLITE_[A-Z0-9_]+)"', path.read_text(errors="replace")))
    return [(f"`{n}`", where_text(rf'"{n}"', ["src", "agent", "python/boxlite", "python/src"],
                             (".cc", ".h", ".py"))) for n in sorted(names)]


def render():
    out = [BEGIN, ""]
    for title, head, rows in (("CLI flags", "flag", cli_rows()),
                              ("SDK box options (`BoxOptions`, `SimpleBox`, `Box`...)", "argument",
                               sdk_rows()),
                              ("Runtime options (`Options`, `RuntimeOptions`, global CLI flags)",
                               "argument", runtime_rows()),
                              ("Environment variables", "variable", env_rows())):
        out += [f"**{title}**", "", f"| {head} | handled in (file, function) |", "| --- | --- |"]
        out += [f"| {a} | {b} |" for a, b in rows]
        out.append("")
    out.append(END)
    return "\n".join(out)


def main():
    doc = DOC.read_text()
    if BEGIN not in doc or END not in doc:
        sys.exit(f"{DOC}: the index markers are missing")
    head, rest = doc.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + render() + tail
    if "--check" in sys.argv[1:]:
        if new != doc:
            sys.exit("docs/contributing.md: the one-hop index is out of date; run scripts/gen-index.py")
        return
    DOC.write_text(new)


if __name__ == "__main__":
    main()
