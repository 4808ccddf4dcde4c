"""The written spec: what the user typed, as statements with source positions.

Nothing here is interpreted yet (an op's arguments are still tokens); resolve.py
gives them meaning. `fmt` prints this structure back, so it keeps what a person
wrote: repeats, named blocks, and (through `Spec.comments`) comments.
"""
from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from typing import Union

from .errors import Span

SUFFIXES = {"k": 1_000, "m": 1_000_000}


@dataclass(frozen=True)
class Token:
    """One argument as written: a size (`3x3`), a number (`.05`, `80k`) or a name (`relu`)."""
    kind: str   # "size" | "number" | "name"
    text: str
    span: Span

    @property
    def number(self) -> float:
        """The value of a number token, with `k`/`M` suffixes applied."""
        text = self.text
        scale = SUFFIXES.get(text[-1].lower(), 1)
        if scale != 1:
            text = text[:-1]
        value = float(text) * scale
        # a numeral beyond float range is "huge", not infinite: every range check then rejects it
        return value if math.isfinite(value) else math.copysign(sys.float_info.max, value)

    @property
    def dims(self) -> tuple[int, ...]:
        return tuple(int(part) for part in self.text.split("x"))

    def canonical(self) -> str:
        """How `fmt` prints it: names as written, sizes as AxB, numbers without redundant zeros."""
        if self.kind == "name":
            return self.text
        if self.kind == "size":
            return "x".join(str(d) for d in self.dims)
        return canonical_number(self.text)


def canonical_number(text: str) -> str:
    suffix = text[-1] if text[-1].lower() in SUFFIXES else ""
    body = text[:-1] if suffix else text
    if body.startswith("+"):
        body = body[1:]
    if any(c in body for c in ".eE"):
        body = repr(float(body))
        if body.endswith(".0") and "e" not in body:
            body = body[:-2]
    else:
        body = str(int(body))
    return body + {"k": "k", "m": "M"}.get(suffix.lower(), "")


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


Statement = Union[HeaderStmt, LayerStmt, BlockDef, AssertStmt, TrainSection, ResidualStmt, ParallelStmt]


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
