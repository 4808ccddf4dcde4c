"""The written spec: what the user typed, as statements with source positions.

Nothing here is interpreted yet (an op's arguments are still tokens); resolve.py
gives them meaning. `fmt` prints this structure back, so it keeps what a person
wrote: repeats, named blocks, and (through `Spec.comments`) comments.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Iterator, Union

from ..errors import Span

SUFFIXES = {"k": 1_000, "m": 1_000_000}


@dataclass(frozen=True)
class Token:
    """One argument as written: a size (`3x3`), a number (`.05`, `80k`) or a name (`relu`)."""
    kind: str   # "size" | "number" | "numbers" (`1,2`) | "factor" (`2x`) | "name"
    text: str
    span: Span

    @property
    def number(self) -> float:
        """The value of a number token, with `k`/`M` suffixes applied."""
        value = self._float()
        # a numeral beyond float range is "huge", not infinite: every range check then rejects it
        return value if math.isfinite(value) else math.copysign(sys.float_info.max, value)

    @property
    def too_large(self) -> bool:
        """A numeral beyond float range (`1e400`): the resolver rejects it wherever it stands."""
        return self.kind == "number" and not math.isfinite(self._float())

    def _float(self) -> float:
        text = self.text
        scale = SUFFIXES.get(text[-1].lower(), 1)
        return float(text[:-1] if scale != 1 else text) * scale

    @property
    def dims(self) -> tuple[int, ...]:
        """The whole numbers of a size (`3x1`) or of numbers (`1,2`)."""
        return tuple(whole(part) for part in self.text.replace(",", "x").rstrip("x").split("x"))

    def canonical(self) -> str:
        """How `fmt` prints it: names as written, sizes as AxB, numbers without redundant zeros."""
        if self.kind == "name":
            return self.text
        if self.kind == "size":
            return "x".join(str(d) for d in self.dims)
        if self.kind == "numbers":
            return ",".join(str(d) for d in self.dims)
        if self.kind == "factor":
            return f"{self.dims[0]}x"
        return canonical_number(self.text)


def canonical_number(text: str) -> str:
    suffix = text[-1] if text[-1].lower() in SUFFIXES else ""
    body = text[:-1] if suffix else text
    if body.startswith("+"):
        body = body[1:]
    if any(c in body for c in ".eE"):
        if not math.isfinite(float(body)):
            return text  # repr would write `inf`, which is no numeral: keep what was written
        body = repr(float(body))
        if body.endswith(".0") and "e" not in body:
            body = body[:-2]
    else:  # by hand, not int(): Python refuses to convert numerals of more than 4,300 digits
        sign, digits = ("-", body[1:]) if body.startswith("-") else ("", body)
        digits = digits.lstrip("0") or "0"
        body = (sign if digits != "0" else "") + digits
    return body + {"k": "k", "m": "M"}.get(suffix.lower(), "")


BEYOND_ANY_LIMIT = 10 ** 30


def whole(digits: str) -> int:
    """The value of a run of digits; past 30 significant digits, a stand-in beyond every limit of the
    language (Python refuses to convert more than 4,300 digits, and leading zeros are free)."""
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 30 else BEYOND_ANY_LIMIT


@dataclass
class CallArg:
    name: Token | None
    value: Token


@dataclass
class LayerStmt:
    """`[N *] op [(args)] arg*`: a layer, or a use of a named block."""
    op: Token
    args: list[Token]
    count: Token | None = None
    call_args: list[CallArg] | None = None
    span: Span | None = None


@dataclass
class Param:
    name: Token
    default: Token | None = None


@dataclass
class BlockDef:
    name: Token
    params: list[Param]
    body: list["Statement"]
    span: Span
    end_line: int


@dataclass
class AssertStmt:
    metric: Token
    comparison: str          # <=, <, >=, >, ==, !=, in, not in
    value: Token | None      # for comparisons
    members: list[Token]     # for `in [...]`
    span: Span


@dataclass
class TrainItem:
    key: Token
    args: list[Token]


@dataclass
class TrainSection:
    items: list[TrainItem]
    span: Span
    end_line: int


@dataclass
class Body:
    """The statements between `{` and `}`; `line`/`end_line` are those of the braces."""
    statements: list["Statement"]
    line: int
    end_line: int


@dataclass
class ResidualStmt:
    """`residual [add|concat] { body } [shortcut { layers }]`; no shortcut = identity."""
    count: Token | None
    merge: Token | None
    body: Body
    shortcut: Body | None
    span: Span
    end_line: int


@dataclass
class Branch:
    body: Body
    span: Span


@dataclass
class ParallelStmt:
    """`parallel add|concat { branch { ... } ... }`; an empty branch is the identity."""
    count: Token | None
    merge: Token
    branches: list[Branch]
    span: Span
    end_line: int


@dataclass
class HeaderStmt:
    """`model NAME`, `input HxWxC` or `classes N`."""
    keyword: str
    value: Token
    span: Span


@dataclass
class AllowStmt:
    """`allow W301 W302`: warnings the file does not want said."""
    codes: list[Token]
    span: Span


@dataclass
class ChooseStmt:
    """`choose w in [32, 48, 64]`: an open value of a design space (`language/choices.py`)."""
    name: Token
    values: list[Token]
    span: Span


Statement = Union[HeaderStmt, LayerStmt, BlockDef, AssertStmt, TrainSection, ResidualStmt, ParallelStmt,
                  AllowStmt, ChooseStmt]


@dataclass
class Comment:
    line: int
    column: int
    text: str


@dataclass
class Spec:
    file: str
    text: str
    statements: list[Statement]
    comments: list[Comment] = field(default_factory=list)


def written_tokens(statements: list[Statement]) -> Iterator[Token]:
    """Every token of these statements, nested bodies included: for checks that apply to any token."""
    for stmt in statements:
        if isinstance(stmt, HeaderStmt):
            yield stmt.value
        elif isinstance(stmt, LayerStmt):
            yield from [t for t in (stmt.count, stmt.op, *stmt.args) if t is not None]
            for arg in stmt.call_args or []:
                yield from [t for t in (arg.name, arg.value) if t is not None]
        elif isinstance(stmt, BlockDef):
            yield stmt.name
            for p in stmt.params:
                yield from [t for t in (p.name, p.default) if t is not None]
            yield from written_tokens(stmt.body)
        elif isinstance(stmt, AssertStmt):
            yield from [t for t in (stmt.metric, stmt.value, *stmt.members) if t is not None]
        elif isinstance(stmt, AllowStmt):
            yield from stmt.codes
        elif isinstance(stmt, ChooseStmt):
            yield from [stmt.name, *stmt.values]
        elif isinstance(stmt, TrainSection):
            for item in stmt.items:
                yield from [item.key, *item.args]
        elif isinstance(stmt, (ResidualStmt, ParallelStmt)):
            yield from [t for t in (stmt.count, stmt.merge) if t is not None]
            bodies = [stmt.body, stmt.shortcut] if isinstance(stmt, ResidualStmt) else [b.body for b in stmt.branches]
            for body in bodies:
                yield from written_tokens(body.statements if body else [])
