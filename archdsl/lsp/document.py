"""A buffer's text read by the front end, in the editor's coordinates.

The reading is `archdsl check`'s: parse, resolve and analyze (archdsl/cli/__init__.py `_load`), then the spec's
asserts; every error of the first stage that fails, or else the warnings said and the failed asserts.
Positions are converted here once: the front end counts 1-based lines and code points, LSP counts 0-based
lines and UTF-16 code units (an emoji in a comment is two units, `é` one).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..analysis import (
    Analysis,
    LayerStats,
    analyze,
    check_assertions,
    constraint_errors,
)
from ..errors import ArchError, Span, SpecSyntaxError, source_lines
from ..ir import Layer
from ..language.parser import BOM, MAX_SOURCE_BYTES, parse
from ..analysis.space import explore
from ..language.choices import check_choices, count, instantiate, resolve_first
from ..language.resolve import resolve
from ..language.spec import (
    BlockDef,
    LayerStmt,
    ParallelStmt,
    ResidualStmt,
    Spec,
    Statement,
)


@dataclass(frozen=True)
class Problem:
    """An error or warning as a diagnostic: 0-based line, UTF-16 start and end columns."""

    code: str
    message: str
    hint: str | None
    severity: str   # "error" | "warning"
    line: int
    start: int
    end: int


@dataclass
class Reading:
    """What the front end made of one version of a buffer. `spec` is None if the text does not parse,
    `analysis` None if the spec does not resolve or analyse."""

    text: str
    spec: Spec | None = None
    analysis: Analysis | None = None
    problems: list[Problem] = field(default_factory=list)
    # 1-based source line -> the layers written there, with their rows (a block body's line: every use's)
    layers_at: dict[int, list[tuple[Layer, LayerStats]]] = field(default_factory=dict)
    shown_picks: dict[str, str] = field(default_factory=dict)  # a design space: the values of the variant shown

    @property
    def lines(self) -> tuple[str, ...]:
        return source_lines(self.text)


def read(text: str, file: str) -> Reading:
    """Read `text` (the buffer of `file`, as messages name it) as `archdsl check FILE` reads the file."""
    reading = Reading(text)
    # a byte order mark is not the spec's (read_source drops it): read without it, place after it
    body = text.removeprefix(BOM)
    try:
        _refuse_what_is_not_text(body, file)
        reading.spec = parse(body, file)
        model, reading.shown_picks = _model(reading.spec)
        reading.analysis = analyze(model)
    except ArchError as exc:
        reading.problems = [_after_bom(problem(e, body), text) for e in getattr(exc, "errors", [exc])]
        return reading
    analysis = reading.analysis
    failed = constraint_errors(check_assertions(analysis), source=body)
    reading.problems = [_after_bom(p, text) for p in [warning_problem(w, body) for w in analysis.warnings]
                        + [problem(e, body) for e in failed]]
    for layer, row in zip(analysis.model.layers, analysis.rows):
        reading.layers_at.setdefault(layer.where.line, []).append((layer, row))
    for line, expansion in block_uses(reading.spec, analysis).items():
        reading.layers_at.setdefault(line, []).extend(expansion)
    return reading


EXPLORED_IN_EDITOR = 1000  # a larger design space is checked by its first variant only while typing


def _model(spec: Spec):
    """The spec's model and, for a design space, the values of the variant it is: a space is read as
    `archdsl check` reads it (every variant, an error if none holds the asserts) and shown by its first
    feasible variant (a space too large to explore while typing, by its first)."""
    choices = check_choices(spec)
    if not choices:
        return resolve_first(spec), {}
    if count(choices) > EXPLORED_IN_EDITOR:
        return resolve_first(spec), {c.name: c.texts[0] for c in choices}
    space = explore(spec)
    if not space.feasible:
        raise space.no_feasible_error()
    variant = space.feasible[0]
    return resolve(instantiate(spec, variant.picks)[0]), variant.values()


def block_uses(spec: Spec, analysis: Analysis) -> dict[int, list[tuple[Layer, LayerStats]]]:
    """1-based line of each use of a named block (outside block definitions) -> the layers it expands to.

    A layer's `block` is its expansion path (`residual#4/st(4)#4/b()#8`): each use of a block is one
    instance (`st(4)#4`), numbered in the order written, `N * st(4)` N of them. The outermost instances
    of named blocks are matched to the uses in source order; if their numbers differ, nothing is said."""
    names = {s.name.text for s in spec.statements if isinstance(s, BlockDef)}
    uses = [s for s in _outside_blocks(spec.statements) if isinstance(s, LayerStmt) and s.op.text in names]
    instances: dict[str, list[tuple[Layer, LayerStats]]] = {}
    for layer, row in zip(analysis.model.layers, analysis.rows):
        segments = (layer.block or "").split("/")
        for depth, segment in enumerate(segments):
            if segment.split("(")[0].split("#")[0] in names:
                instances.setdefault("/".join(segments[:depth + 1]), []).append((layer, row))
                break
    counts = [int(s.count.number) if s.count else 1 for s in uses]
    if sum(counts) != len(instances):
        return {}
    expansions = iter(instances.values())
    found: dict[int, list[tuple[Layer, LayerStats]]] = {}
    for stmt, count in zip(uses, counts):
        for _ in range(count):
            found.setdefault(stmt.span.line, []).extend(next(expansions))
    return found


def _outside_blocks(statements: list[Statement]):
    for stmt in statements:
        yield stmt
        if isinstance(stmt, ResidualStmt):
            yield from _outside_blocks(stmt.body.statements + (stmt.shortcut.statements if stmt.shortcut else []))
        elif isinstance(stmt, ParallelStmt):
            for branch in stmt.branches:
                yield from _outside_blocks(branch.body.statements)


def _after_bom(p: Problem, text: str) -> Problem:
    if p.line == 0 and text.startswith(BOM) and (p.start, p.end) != (0, 0):
        return replace(p, start=p.start + 1, end=p.end + 1)
    return p


def _refuse_what_is_not_text(text: str, file: str) -> None:
    """What `read_source` refuses of a file, refused of a buffer: NUL characters, more than a spec's size."""
    if "\x00" in text:
        raise SpecSyntaxError(f"{file} is a binary file, not a spec", code="E102", hint="a .arch spec is plain UTF-8 text")
    if len(text) > MAX_SOURCE_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise SpecSyntaxError(f"{file} is more than {MAX_SOURCE_BYTES:,} bytes; a spec is at most "
                              f"{MAX_SOURCE_BYTES:,}", code="E102", hint="is this really a .arch file?")


def problem(error: ArchError, text: str) -> Problem:
    return Problem(error.code, error.message, error.hint, "error", *span_range(error.span, text))


def warning_problem(warning, text: str) -> Problem:
    return Problem(warning.code, warning.message, warning.hint, "warning", *span_range(warning.span, text))


def span_range(span: Span | None, text: str) -> tuple[int, int, int]:
    """(line, start, end) in LSP terms of the characters the command line's caret underlines: from the
    column, end_column - column of them (at least one), not past the end of the line unless the span starts
    there. A whole-file problem (no span) sits at the start of the file."""
    if span is None:
        return 0, 0, 0
    lines = source_lines(text)
    line_text = lines[span.line - 1] if 1 <= span.line <= len(lines) else ""
    width = max(1, (span.end_column or span.column + 1) - span.column)
    width = min(width, max(1, len(line_text) - span.column + 1))
    first = span.column - 1
    return span.line - 1, utf16_column(line_text, first), utf16_column(line_text, first + width)


def utf16_column(line: str, index: int) -> int:
    """The UTF-16 offset of code point `index` of `line` (past its end: one unit a missing character)."""
    head = line[:index]
    return len(head.encode("utf-16-le", "surrogatepass")) // 2 + max(0, index - len(line))


def code_point_index(line: str, column: int) -> int:
    """The code point at UTF-16 offset `column` of `line` (inside a surrogate pair: the pair's character)."""
    units = 0
    for index, char in enumerate(line):
        if units >= column:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)
