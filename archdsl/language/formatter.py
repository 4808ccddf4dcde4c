"""`archdsl fmt`: print a written spec in canonical form.

Canonical: one space between tokens, numbers without redundant digits (`.05` -> `0.05`),
language words lower-case, block and train bodies indented by two spaces, comments
kept where they were (trailing comments two spaces after the statement), runs of
blank lines folded to one. Formatting is idempotent and never changes the IR.
"""
from __future__ import annotations

from .options import canonical_op, option_word
from .spec import (AllowStmt, AssertStmt, BlockDef, ChooseStmt, HeaderStmt, LayerStmt, ParallelStmt, ResidualStmt, Spec, Token,
                   TrainSection)

INDENT = "  "


def canonical_token(tok: Token) -> str:
    """Words of the language lower-case (the resolver refuses block and parameter names that are such words
    in another case, so this never changes a name), other names as written."""
    if tok.kind == "name":
        lower = tok.text.lower()
        if option_word(lower) or canonical_op(lower):
            return lower
        return tok.text
    return tok.canonical()


def format_layer(stmt: LayerStmt) -> str:
    head = canonical_token(stmt.op)
    if stmt.call_args is not None:
        args = [(f"{a.name.text}=" if a.name else "") + canonical_token(a.value) for a in stmt.call_args]
        head += "(" + ", ".join(args) + ")"
    if stmt.count is not None:
        head = f"{stmt.count.canonical()} * {head}"
    return " ".join([head] + [canonical_token(t) for t in stmt.args])


def _lines(stmt, depth: int) -> list[tuple[int, int, str]]:
    """(source line, depth, text) for each line a statement prints."""
    if isinstance(stmt, HeaderStmt):
        # a model's name is free text, even when it is spelled like a word of the language
        value = stmt.value.text if stmt.keyword == "model" else canonical_token(stmt.value)
        return [(stmt.span.line, depth, f"{stmt.keyword} {value}")]
    if isinstance(stmt, LayerStmt):
        return [(stmt.span.line, depth, format_layer(stmt))]
    if isinstance(stmt, AssertStmt):
        if stmt.value is not None:
            text = f"assert {stmt.metric.text} {stmt.comparison} {canonical_token(stmt.value)}"
        else:
            members = ", ".join(canonical_token(m) for m in stmt.members)
            text = f"assert {stmt.metric.text} {stmt.comparison} [{members}]"
        return [(stmt.span.line, depth, text)]
    if isinstance(stmt, AllowStmt):
        return [(stmt.span.line, depth, " ".join(["allow", *(t.text.upper() for t in stmt.codes)]))]
    if isinstance(stmt, ChooseStmt):
        values = ", ".join(canonical_token(v) for v in stmt.values)
        return [(stmt.span.line, depth, f"choose {stmt.name.text} in [{values}]")]
    if isinstance(stmt, BlockDef):
        params = ", ".join(p.name.text + (f"={canonical_token(p.default)}" if p.default else "")
                           for p in stmt.params)
        out = [(stmt.span.line, depth, f"block {stmt.name.text}({params}) {{" if stmt.params
                else f"block {stmt.name.text} {{")]
        for inner in stmt.body:
            out += _lines(inner, depth + 1)
        return out + [(stmt.end_line, depth, "}")]
    if isinstance(stmt, ResidualStmt):
        head = ("" if stmt.count is None else f"{stmt.count.canonical()} * ") + "residual" + \
            (f" {stmt.merge.text.lower()}" if stmt.merge else "")
        out = [(stmt.span.line, depth, head + " {")]
        out += [line for inner in stmt.body.statements for line in _lines(inner, depth + 1)]
        if stmt.shortcut is not None:
            out.append((stmt.body.end_line, depth, "} shortcut {"))
            out += [line for inner in stmt.shortcut.statements for line in _lines(inner, depth + 1)]
        return out + [(stmt.end_line, depth, "}")]
    if isinstance(stmt, ParallelStmt):
        head = ("" if stmt.count is None else f"{stmt.count.canonical()} * ") + f"parallel {stmt.merge.text.lower()}"
        out = [(stmt.span.line, depth, head + " {")]
        for branch in stmt.branches:
            out.append((branch.span.line, depth + 1, "branch {"))
            out += [line for inner in branch.body.statements for line in _lines(inner, depth + 2)]
            out.append((branch.body.end_line, depth + 1, "}"))
        return out + [(stmt.end_line, depth, "}")]
    if isinstance(stmt, TrainSection):
        out = [(stmt.span.line, depth, "train {")]
        for item in stmt.items:
            words = [item.key.text.lower()] + [canonical_token(t) for t in item.args]
            out.append((item.key.span.line, depth + 1, " ".join(words)))
        return out + [(stmt.end_line, depth, "}")]
    raise TypeError(f"unknown statement {stmt!r}")


def _ranges(stmt) -> list[tuple[int, int]]:
    """(first, last) source lines of every pair of braces in a statement, nested ones included."""
    if isinstance(stmt, BlockDef):
        return [(stmt.span.line, stmt.end_line)] + [r for inner in stmt.body for r in _ranges(inner)]
    if isinstance(stmt, TrainSection):
        return [(stmt.span.line, stmt.end_line)]
    if isinstance(stmt, ResidualStmt):
        bodies = [stmt.body] + ([stmt.shortcut] if stmt.shortcut else [])
        return [(b.line, b.end_line) for b in bodies] + \
            [r for b in bodies for inner in b.statements for r in _ranges(inner)]
    if isinstance(stmt, ParallelStmt):
        return [(stmt.span.line, stmt.end_line)] + [(b.body.line, b.body.end_line) for b in stmt.branches] + \
            [r for b in stmt.branches for inner in b.body.statements for r in _ranges(inner)]
    return []


def format_spec(spec: Spec) -> str:
    printed: dict[int, tuple[int, str]] = {}
    bodies: list[tuple[int, int]] = []  # (first, last) source lines inside braces, for comment indentation
    for stmt in spec.statements:
        for line, depth, text in _lines(stmt, 0):
            printed[line] = (depth, text)
        bodies.extend(_ranges(stmt))
    comments = {c.line: c.text.rstrip() for c in spec.comments}
    last_line = max([*printed, *comments, 0])
    out: list[tuple[str, str | None]] = []  # (the line, or its code part; its trailing comment)
    for line in range(1, last_line + 1):
        if line in printed:
            depth, text = printed[line]
            out.append((INDENT * depth + text, comments.get(line)))
        elif line in comments:
            depth = sum(1 for first, last in bodies if first < line < last)
            out.append((INDENT * depth + comments[line], None))
        elif out and out[-1][0] != "":
            out.append(("", None))
    # no blank line just inside braces
    out = [(text, note) for i, (text, note) in enumerate(out)
           if text or not (i + 1 < len(out) and out[i + 1][0].lstrip().startswith("}")
                           or i > 0 and out[i - 1][0].endswith("{"))]
    while out and out[-1][0] == "":
        out.pop()
    return "".join(line + "\n" for line in _align_trailing_comments(out))


def _align_trailing_comments(lines: list[tuple[str, str | None]]) -> list[str]:
    """Trailing comments of consecutive lines start in one column, two spaces after the longest code (as
    gofmt aligns them): a hand-aligned column of comments survives `fmt`, and the result is idempotent."""
    out: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and lines[j][1] is not None:
            j += 1
        if j == i:
            out.append(lines[i][0])
            i += 1
            continue
        width = max(len(code) for code, _ in lines[i:j])
        out += [f"{code.ljust(width)}  {note}" for code, note in lines[i:j]]
        i = j
    return out
