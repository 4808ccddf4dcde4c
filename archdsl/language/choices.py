"""Design spaces: `choose NAME in [v1, v2, ...]` lines, checked, and one combination of values filled in.

A spec with choices is a family of specs. `instantiate(spec, picks)` is the written spec of one member:
every use of a choice's name (a layer's argument or repeat count, a block argument or parameter
default, a train setting's value, an assert's limit) replaced by the picked value, placed where the
name stood, so an error about it points at the use. `concrete_text` writes the same member as
`.arch` text, the user's lines and comments kept. The choices are expanded here, before resolving, so
a variant is resolved (and trained, exported, drawn) like any other spec.
"""
from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass

from ..errors import ArchError, Span, SpecSemanticError, raise_collected
from .blocks import reserved
from .resolve import resolve
from .spec import AllowStmt, BlockDef, ChooseStmt, HeaderStmt, ParallelStmt, ResidualStmt, Spec, Token

MAX_COMBINATIONS = 100_000  # each is resolved and analysed (about 1-2 ms); its rows are kept to sort
# fields whose tokens are names of things, never values a choice could stand for
_NOT_VALUES = {"op", "name", "key", "metric", "merge", "codes", "members"}
_KIND_WORDS = {"size": "a size", "number": "a number", "name": "a word", "numbers": "numbers", "factor": "a factor"}


@dataclass(frozen=True)
class Choice:
    name: str
    values: tuple[Token, ...]
    stmt: ChooseStmt

    @property
    def texts(self) -> list[str]:
        return [v.canonical() for v in self.values]


def choices_of(spec: Spec) -> list[Choice]:
    """The spec's choices, in the order written (an empty list for an ordinary spec)."""
    return [Choice(s.name.text, tuple(s.values), s) for s in spec.statements if isinstance(s, ChooseStmt)]


def count(choices: list[Choice]) -> int:
    return math.prod(len(c.values) for c in choices)


def combinations(choices: list[Choice]):
    """Every combination, as {name: value token}; the last choice varies fastest."""
    for values in itertools.product(*(c.values for c in choices)):
        yield {c.name: v for c, v in zip(choices, values)}


def check_choices(spec: Spec) -> list[Choice]:
    """The spec's choices, or SpecSemanticError(s) for every mistake in them: a choice where it cannot be,
    named like a word of the language or a block or its parameter, twice, with no values, repeated or mixed
    values, never used; or too many combinations."""
    errors: list[ArchError] = []
    choices = choices_of(spec)
    for nested in _nested_chooses(spec.statements):
        errors.append(SpecSemanticError("a `choose` line inside a body", nested.span,
                                        "move it to the top of the file, outside every block", "E280"))
    blocks = {s.name.text: s for s in spec.statements if isinstance(s, BlockDef)}
    seen: dict[str, Choice] = {}
    for c in choices:
        _check_name(c, seen, blocks, errors)
        seen.setdefault(c.name, c)
        _check_values(c, errors)
    used = {tok.text for tok in _value_tokens(spec) if tok.kind == "name"}
    for c in choices:
        if c.values and c.name not in used and not any(e.span == c.stmt.name.span for e in errors):
            errors.append(SpecSemanticError(f"choice '{c.name}' is never used", c.stmt.name.span,
                                            f"write `{c.name}` where a value goes (e.g. `sep 3x3 {c.name} same`), "
                                            "or delete this line", "E283"))
    total = count(choices)
    if total > MAX_COMBINATIONS:
        sizes = " x ".join(str(len(c.values)) for c in choices)
        errors.append(SpecSemanticError(f"the choices make {total:,} combinations ({sizes}), more than "
                                        f"{MAX_COMBINATIONS:,}", choices[0].stmt.span,
                                        "drop values, or fix some choices to one value", "E284"))
    for e in errors:
        e.source = spec.text
    raise_collected(errors)
    return choices


def _check_name(c: Choice, seen: dict[str, Choice], blocks: dict[str, BlockDef], errors: list) -> None:
    tok = c.stmt.name
    if c.name in seen:
        errors.append(SpecSemanticError(f"choice '{c.name}' is declared twice", tok.span,
                                        f"merge the values into the one on line {seen[c.name].stmt.span.line}",
                                        "E281"))
    elif reserved(c.name) or c.name.lower() == "classes":
        errors.append(SpecSemanticError(f"'{c.name}' is a word of the language, not a free choice name", tok.span,
                                        f"name it e.g. `{c.name}_` or `my_{c.name}`", "E281"))
    elif c.name in blocks:
        errors.append(SpecSemanticError(f"choice '{c.name}' has the name of the block on line "
                                        f"{blocks[c.name].span.line}", tok.span, "rename one of them", "E281"))
    else:
        for block in blocks.values():
            for p in block.params:
                if p.name.text == c.name:
                    errors.append(SpecSemanticError(
                        f"block '{block.name.text}' has a parameter named like choice '{c.name}': inside the block "
                        f"the name would mean the parameter", p.name.span,
                        f"rename the parameter (here and in the block's body), e.g. to `{c.name}_`", "E281"))


def _check_values(c: Choice, errors: list) -> None:
    if not c.values:
        errors.append(SpecSemanticError(f"choice '{c.name}' has no values", c.stmt.span,
                                        f"list at least one, e.g. `choose {c.name} in [32, 64]`", "E282"))
        return
    first = c.values[0]
    texts: dict[str, Token] = {}
    for v in c.values:
        if v.kind != first.kind:
            errors.append(SpecSemanticError(
                f"choice '{c.name}' mixes {_KIND_WORDS[first.kind]} ({first.text}) and {_KIND_WORDS[v.kind]} "
                f"({v.text})", v.span, f"give every value of '{c.name}' the same form, e.g. all like {first.text}",
                "E282"))
        elif v.canonical() in texts:
            errors.append(SpecSemanticError(f"choice '{c.name}' lists {v.text} twice", v.span,
                                            "delete one of them", "E282"))
        texts.setdefault(v.canonical(), v)


def _nested_chooses(statements) -> list[ChooseStmt]:
    found = []
    for stmt in statements:
        for body in _bodies(stmt):
            found += [s for s in body if isinstance(s, ChooseStmt)] + _nested_chooses(body)
    return found


def _bodies(stmt) -> list[list]:
    if isinstance(stmt, BlockDef):
        return [stmt.body]
    if isinstance(stmt, ResidualStmt):
        return [b.statements for b in (stmt.body, stmt.shortcut) if b is not None]
    if isinstance(stmt, ParallelStmt):
        return [b.body.statements for b in stmt.branches]
    return []


def _value_tokens(spec: Spec) -> list[Token]:
    """Every token in a place a value goes (not op names, keys, metrics, headers or names of things)."""
    return [tok for tok, field_name in _tokens(spec.statements) if field_name not in _NOT_VALUES]


def _tokens(value, field_name: str | None = None):
    """(token, the field it is in) for every token of a statement tree; headers, allows and choices have none
    that a choice could stand for."""
    if isinstance(value, Token):
        yield value, field_name
    elif isinstance(value, list):
        for item in value:
            yield from _tokens(item, field_name)
    elif dataclasses.is_dataclass(value) and not isinstance(value, (Span, HeaderStmt, AllowStmt, ChooseStmt)):
        for f in dataclasses.fields(value):
            yield from _tokens(getattr(value, f.name), f.name)


# ---------------------------------------------------------------- one variant

def instantiate(spec: Spec, picks: dict[str, Token], uses: list[Token] | None = None
                ) -> tuple[Spec, dict[Span, tuple[str, Token]]]:
    """The written spec of one combination, without its `choose` lines; and use span -> (name, value), to say
    in an error where a value came from. `uses`: `choice_uses(spec)`, when many combinations are made."""
    picked = _picked(spec, picks, uses)

    def swap(value):
        if isinstance(value, Token):
            if value.span not in picked or value.kind != "name":
                return value
            pick = picked[value.span][1]
            return Token(pick.kind, pick.text, value.span)
        if isinstance(value, list):
            return [swap(item) for item in value]
        if dataclasses.is_dataclass(value) and not isinstance(value, (Span, HeaderStmt, AllowStmt)):
            return dataclasses.replace(value, **{f.name: swap(getattr(value, f.name))
                                                 for f in dataclasses.fields(value) if f.init})
        return value

    lines = {span.line for span in picked}
    statements = [swap(s) if _lines_of(s) & lines else s for s in spec.statements if not isinstance(s, ChooseStmt)]
    return dataclasses.replace(spec, statements=statements), picked


def _picked(spec: Spec, picks: dict[str, Token], uses: list[Token] | None) -> dict[Span, tuple[str, Token]]:
    """Use span -> (the choice's name, the value picked for it)."""
    uses = choice_uses(spec) if uses is None else uses
    return {tok.span: (tok.text, picks[tok.text]) for tok in uses if tok.text in picks}


def choice_uses(spec: Spec) -> list[Token]:
    """The tokens that name a choice where a value goes."""
    names = {c.name for c in choices_of(spec)}
    return [tok for tok in _value_tokens(spec) if tok.kind == "name" and tok.text in names]


def _lines_of(stmt) -> set[int]:
    first = stmt.span.line if getattr(stmt, "span", None) else stmt.name.span.line
    return set(range(first, getattr(stmt, "end_line", first) + 1))


def note_values(exc: ArchError, uses: dict[Span, tuple[str, Token]]) -> ArchError:
    """Say in each error about a picked value which choice gave it: `(`w` is 48, from line 1)`."""
    for e in getattr(exc, "errors", [exc]):
        if e.span in uses:
            name, value = uses[e.span]
            e.message += f" (`{name}` is {value.text}, from line {value.span.line})"
    return exc


def concrete_text(spec: Spec, picks: dict[str, Token]) -> str:
    """The spec's text with the picks written in: each use of a choice replaced by its value, each `choose`
    line turned into a comment that says what was chosen."""
    lines = spec.text.split("\n")
    by_line: dict[int, list] = {}
    for span, (_, value) in _picked(spec, picks, None).items():
        by_line.setdefault(span.line, []).append((span.column, span.end_column, value.text))
    for line_no, edits in by_line.items():
        text = lines[line_no - 1]
        for column, end, value in sorted(edits, reverse=True):
            text = text[:column - 1] + value + text[end - 1:]
        lines[line_no - 1] = text
    for c in choices_of(spec):
        i = c.stmt.span.line - 1
        indent = lines[i][:len(lines[i]) - len(lines[i].lstrip())]
        lines[i] = f"{indent}# {c.name} = {picks[c.name].text}, chosen from: {lines[i].strip()}"
    return "\n".join(lines)


def describe(picks: dict[str, Token]) -> str:
    """`w=48 k=3x3`, as tables and messages name a variant."""
    return " ".join(f"{name}={value.canonical()}" for name, value in picks.items())


def resolve_first(spec: Spec):
    """The spec's model; for a design space, its first variant's, the choices checked (what `fmt` checks
    before formatting, and what an editor's hovers show)."""
    choices = check_choices(spec)
    if not choices:
        return resolve(spec)
    member, uses = instantiate(spec, next(combinations(choices)))
    try:
        return resolve(member)
    except ArchError as exc:
        raise note_values(exc, uses) from None
