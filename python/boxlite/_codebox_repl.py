"""CodeBox's interpreter server: runs in the box as one long-lived Python process and
executes cells in one namespace, so variables, imports and open files survive between
``CodeBox.run`` calls. The SDK passes this file's text to ``python3 -c``; nothing of it is
installed in the image. The protocol is in docs/codebox.md.

Channel: JSON lines (ASCII: every other character is escaped) on the private copies of
the exec's stdin and stdout that the server takes at start. The process's own fds 0, 1
and 2 are /dev/null between cells and, during a cell, /dev/null and two capture files,
so neither the cell's prints nor its child processes can write on the channel by
accident (a cell that looks for the channel and writes on it on purpose is the host's
problem: the host trusts nothing it reads).

Requests: ``{"id": N, "op": "run", "code": STR, "filename": STR}``.
Answers: ``{"id": N, "stdout": STR, "stderr": STR, "stdout_truncated": BOOL,
"stderr_truncated": BOOL, "results": [BUNDLE...], "error": null | {"name", "value",
"traceback"}, "execution_count": N}``; a BUNDLE maps format names (``text``, ``html``,
``markdown``, ``svg``, ``png``, ``jpeg``, ``pdf``, ``latex``, ``json``, ``javascript``)
to data (base64 for the binary ones) plus ``is_main_result``.

SIGINT raises KeyboardInterrupt in a running cell and is ignored otherwise. Written for
any Python from 3.8 on (the image's, not the SDK's).
"""

import ast
import base64
import builtins
import importlib
import io
import json
import linecache
import os
import signal
import sys
import tempfile
import traceback
import types
import warnings

PROTOCOL = 1
# The most output kept per stream and per cell unless the request says; the rest is
# dropped (and said so).
MAX_OUTPUT = 8 << 20
# The most bytes of one request line (the host sends code of at most 16 MiB, escaped).
MAX_REQUEST = 128 << 20

# (format, method) of IPython's display protocol, in IPython's order.
FORMATS = (
    ("html", "_repr_html_"),
    ("markdown", "_repr_markdown_"),
    ("svg", "_repr_svg_"),
    ("png", "_repr_png_"),
    ("jpeg", "_repr_jpeg_"),
    ("pdf", "_repr_pdf_"),
    ("latex", "_repr_latex_"),
    ("json", "_repr_json_"),
    ("javascript", "_repr_javascript_"),
)
MIME = {
    "text/plain": "text", "text/html": "html", "text/markdown": "markdown",
    "image/svg+xml": "svg", "image/png": "png", "image/jpeg": "jpeg",
    "application/pdf": "pdf", "text/latex": "latex", "application/json": "json",
    "application/javascript": "javascript",
}
BINARY = ("png", "jpeg", "pdf")

running = False
outputs = []
# The file name of this server's code (the SDK compiles it under this name), whose frames
# are left out of the tracebacks of cells.
SELF = "<boxlite-codebox>"
server_module = None


def on_sigint(signum, frame):
    if running:
        raise KeyboardInterrupt


def encode_value(fmt, value):
    """The JSON form of one format's data, or None when it has none."""
    if isinstance(value, tuple) and value:
        value = value[0]  # (data, metadata)
    if value is None:
        return None
    if fmt in BINARY:
        if isinstance(value, str):
            return value  # Already base64, as IPython hands images around.
        return base64.b64encode(bytes(value)).decode("ascii")
    if fmt == "json":
        json.dumps(value)  # Must be JSON-able; a TypeError drops the format.
        return value
    return value if isinstance(value, str) else str(value)


def figure_png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def is_figure(obj):
    figure = sys.modules.get("matplotlib.figure")
    return figure is not None and isinstance(obj, figure.Figure)


def bundle(obj):
    """The display formats of `obj` (IPython's protocol; matplotlib figures as PNG)."""
    out = {}
    try:
        out["text"] = repr(obj)
    except Exception as exc:  # A broken __repr__ must not break the cell's answer.
        out["text"] = "<repr failed: %s: %s>" % (type(exc).__name__, exc)
    mimebundle = getattr(type(obj), "_repr_mimebundle_", None)
    if callable(mimebundle):
        try:
            data = obj._repr_mimebundle_()
            if isinstance(data, tuple):
                data = data[0]
            for mime, value in dict(data).items():
                fmt = MIME.get(mime)
                if fmt is not None:
                    value = encode_value(fmt, value)
                    if value is not None:
                        out[fmt] = value
        except Exception:
            pass
    for fmt, method in FORMATS:
        if fmt in out or not callable(getattr(type(obj), method, None)):
            continue
        try:
            value = encode_value(fmt, getattr(obj, method)())
        except Exception:
            continue
        if value is not None:
            out[fmt] = value
    if is_figure(obj) and "png" not in out:
        try:
            out["png"] = figure_png(obj)
        except Exception:
            pass
    return out


def display(*objs, **kwargs):
    """Shows objects as rich outputs of the cell (IPython's ``display``): each becomes one
    entry of the run's ``results``, with every format the object offers."""
    for obj in objs:
        entry = bundle(obj)
        entry["is_main_result"] = False
        outputs.append(entry)


def flush_figures(shown):
    """Every open matplotlib figure becomes a PNG result and is closed (as IPython's
    inline backend does at the end of a cell)."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        for num in plt.get_fignums():
            fig = plt.figure(num)
            if id(fig) not in shown:
                outputs.append({"text": repr(fig), "png": figure_png(fig), "is_main_result": False})
        plt.close("all")
    except Exception as exc:
        sys.stderr.write("boxlite: could not render the open figures: %s\n" % exc)


def error_of(exc, frames=True):
    """The structured error of `exc`, its traceback without the server's own frames
    (none at all for code that did not compile)."""
    top = report = traceback.TracebackException(type(exc), exc, exc.__traceback__ if frames else None)
    seen = set()
    while report is not None and id(report) not in seen:
        seen.add(id(report))
        report.stack = traceback.StackSummary.from_list(
            [f for f in report.stack if f.filename != SELF])
        report = report.__cause__ or report.__context__
    try:
        value = str(exc)
    except Exception:
        value = "<str failed>"
    return {"name": type(exc).__name__, "value": value, "traceback": "".join(top.format())}


def run_cell(namespace, code, filename):
    """Runs one cell; returns (main result bundle or None, error or None)."""
    global running
    shown = set()
    main = None
    try:
        tree = ast.parse(code, filename, "exec")
    except (SyntaxError, ValueError, OverflowError) as exc:
        return None, error_of(exc, frames=False)
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    try:
        body = compile(tree, filename, "exec")
        tail = compile(last, filename, "eval") if last is not None else None
    except (SyntaxError, ValueError, OverflowError) as exc:
        return None, error_of(exc, frames=False)
    error = None
    try:
        running = True
        exec(body, namespace)
        value = eval(tail, namespace) if tail is not None else None
        running = False
        if value is not None:
            namespace["_"] = value
            main = bundle(value)
            main["is_main_result"] = True
            if is_figure(value):
                shown.add(id(value))
    except BaseException as exc:  # KeyboardInterrupt and SystemExit too: the server stays.
        running = False
        error = error_of(exc)
    finally:
        running = False
    flush_figures(shown)
    return main, error


def read_capture(f, limit):
    f.seek(0)
    data = f.read(limit + 1)
    return data[:limit].decode("utf-8", "replace"), len(data) > limit


def main():
    global outputs
    channel_in = os.fdopen(os.dup(0), "rb")
    channel_out = os.fdopen(os.dup(1), "wb")
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8")
    out_stream = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    err_stream = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8",
                                  errors="backslashreplace", write_through=True)
    sys.stdout, sys.stderr = out_stream, err_stream
    os.environ.setdefault("MPLBACKEND", "Agg")
    # plt.show() under Agg only warns that it cannot show; the figure is sent anyway.
    warnings.filterwarnings("ignore", message=".*non-interactive.*")
    signal.signal(signal.SIGINT, on_sigint)
    # Cells run in a module of their own that stands as __main__ (so pickle finds what
    # they define), as IPython's user namespace does.
    global server_module
    server_module = sys.modules["__main__"]  # Keeps this server's globals alive.
    user_main = types.ModuleType("__main__")
    user_main.__dict__.update({"__builtins__": builtins, "display": display})
    sys.modules["__main__"] = user_main
    namespace = user_main.__dict__
    sys.argv = [""]
    count = 0

    def send(doc):
        channel_out.write(json.dumps(doc, ensure_ascii=True).encode("ascii") + b"\n")
        channel_out.flush()

    send({"ready": True, "protocol": PROTOCOL, "pid": os.getpid(),
          "python": "%d.%d.%d" % sys.version_info[:3]})
    while True:
        line = channel_in.readline(MAX_REQUEST)
        if not line:
            return
        try:
            request = json.loads(line)
            request_id = request["id"]
            code = request["code"]
            filename = request.get("filename") or "<cell>"
            limit = request.get("max_output", MAX_OUTPUT)
            if not isinstance(limit, int) or limit <= 0:
                limit = MAX_OUTPUT
        except (ValueError, KeyError, TypeError) as exc:
            send({"id": None, "fatal": "bad request: %s" % exc})
            return
        count += 1
        if filename == "<cell>":
            filename = "<cell-%d>" % count
        outputs = []
        importlib.invalidate_caches()  # Packages installed since the last cell are found.
        captures = (tempfile.TemporaryFile(), tempfile.TemporaryFile())
        for fd, f in zip((1, 2), captures):
            os.dup2(f.fileno(), fd)
        try:
            main_result, error = run_cell(namespace, code, filename)
        finally:
            for stream in (sys.stdout, sys.stderr, out_stream, err_stream):
                try:
                    stream.flush()
                except Exception:
                    pass
            os.dup2(null, 1)
            os.dup2(null, 2)
        # The cell may have replaced or closed them: every cell starts with the server's.
        sys.stdout, sys.stderr = out_stream, err_stream
        (out, out_cut), (err, err_cut) = (read_capture(f, limit) for f in captures)
        for f in captures:
            f.close()
        results = ([main_result] if main_result is not None else []) + outputs
        outputs = []
        send({"id": request_id, "stdout": out, "stderr": err, "stdout_truncated": out_cut,
              "stderr_truncated": err_cut, "results": results, "error": error,
              "execution_count": count})


if __name__ == "__main__":
    main()
