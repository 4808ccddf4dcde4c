"""`archdsl draw`: presenter of the diagram back-ends (graphviz pictures, terminal drawing).

The format comes from `--format` or else from the output's extension. Text formats
(ascii, dot, svg) go to the terminal when no `-o` is given; pictures are written
atomically and never over an existing file. Where graphviz' `dot` program is missing,
the `.dot` source is still written next to the requested output.
"""
from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from ..errors import ArchError, UsageError
from ..safe_text import terminal_text

EXTENSIONS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".txt": "ascii"}
BINARY = ("png", "pdf")
REPEAT_LABEL = re.compile(r"(\d+)\*(.+)#(\d+)")  # resolve's label of a repeat: `2*conv#1`


def block_caption(segment: str) -> str:
    """How both drawings head one block use: a repeat's label `2*conv#1` (the first `N * conv` line) says what
    it is, `2 × conv (repeat 1 of conv)`; a named block's `stage(64)#1` is already its name, arguments and use."""
    m = REPEAT_LABEL.fullmatch(segment)
    return f"{m[1]} × {m[2]} (repeat {m[3]} of {m[2]})" if m else segment


def run_draw(args) -> int:
    fmt = choose_format(args.output, args.format)
    if args.output:
        from ..fileio import check_target
        check_target(args.output, overwrite=False)  # refuse before any work
    from ..analysis import analyze
    from ..language import load
    model = load(args.file)
    analysis = analyze(model)

    if fmt == "ascii":
        from .ascii import draw
        if args.output:
            _write(args.output, (draw(model, analysis) + "\n").encode("utf-8"))
        else:  # the drawing names the spec's file: escaped for the terminal
            _print_text(draw(model.model_copy(update={"file": terminal_text(model.file)}), analysis))
        return 0

    from . import graphviz as gv
    graph = gv.to_digraph(model, analysis, args.rankdir)
    try:
        data = gv.render(graph, fmt)
    except gv.DotNotFound:
        raise _dot_missing(graph.source, args.output, fmt) from None
    if args.output:
        _write(args.output, data)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0


def choose_format(output: str | None, fmt: str | None) -> str:
    allowed = ", ".join(EXTENSIONS)
    if output is None:
        fmt = fmt or "ascii"
        if fmt in BINARY:
            raise UsageError(f"a {fmt} picture is not for the terminal; name the file to write",
                             hint=f"add -o net.{fmt}", code="E650")
        return fmt
    suffix = Path(output).suffix.lower()
    by_extension = EXTENSIONS.get(suffix)
    if fmt is None:
        if by_extension is None:
            what = f"extension '{terminal_text(suffix)}'" if suffix else "no extension"
            raise UsageError(f"cannot tell the format of {terminal_text(output)}: it has {what}",
                             hint=f"end the file name in one of {allowed}, or give --format", code="E650")
        return by_extension
    if by_extension is not None and by_extension != fmt:
        other = Path(output).with_suffix("." + (fmt if fmt != "ascii" else "txt"))
        raise UsageError(f"--format {fmt} does not match {terminal_text(output)}, a {by_extension} file name",
                         hint=f"write -o {terminal_text(other)}, "
                              "or drop --format", code="E650")
    return fmt


def _write(path: str, data: bytes) -> None:
    from ..fileio import atomic_write_bytes
    atomic_write_bytes(path, data, overwrite=False)
    print(f"wrote {terminal_text(path)}")


def _dot_missing(source: str, output: str | None, fmt: str) -> ArchError:
    from .graphviz import INSTALL_HINT, DotNotFound
    if output is None:
        return DotNotFound(f"the graphviz program `dot` is not installed, so no {fmt} could be drawn",
                           hint=f"{INSTALL_HINT}; or get the diagram's source with --format dot")
    dot_path = Path(output).with_suffix(".dot")
    hint = f"{INSTALL_HINT}; then run this command again"
    try:
        from ..fileio import atomic_write_text
        atomic_write_text(dot_path, source, overwrite=False)
        wrote = f"its graphviz source was written to {terminal_text(dot_path)}"
        hint += terminal_text(f", or `dot -T{fmt} {shlex.quote(str(dot_path))} -o {shlex.quote(output)}`")
    except ArchError as exc:
        wrote = f"its graphviz source could not be written either ({terminal_text(exc.message)})"
    return DotNotFound(f"the graphviz program `dot` is not installed, so {terminal_text(output)} was not drawn; "
                       f"{wrote}",
                       hint=hint)


def _print_text(text: str) -> None:
    """Print, falling back to plain ASCII lines where the terminal cannot show box-drawing characters."""
    from .ascii import to_plain_ascii
    encoding = getattr(sys.stdout, "encoding", None) or "ascii"
    try:
        text.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        text = to_plain_ascii(text)
    print(text)
