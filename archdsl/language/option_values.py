"""An option's written value read and checked: a whole number (positive_int), a rate in [0, 1) (unit_rate), an
HxW pair (pair, pair_or_int, pair_from_match for `s2x1`), a padding (explicit_padding); each reports a
SpecSemanticError with its position and a hint, and returns None, when the value does not fit."""
from __future__ import annotations

import math
import re

from ..errors import SpecSemanticError
from ..ops.base import MAX_DIM
from .spec import Token, whole


_AT_LEAST_ONE = {"filters": "a layer needs at least 1 filter", "units": "a dense layer needs at least 1 unit"}


def positive_int(tok: Token, errors: list, what: str) -> int | None:
    value = tok.number if tok.kind == "number" else None
    if value is None or value != int(value):
        errors.append(SpecSemanticError(f"{what} must be a whole number, not '{tok.text}'", tok.span,
                                        _whole_hint(value), "E213"))
        return None
    if not 1 <= value <= MAX_DIM:
        errors.append(SpecSemanticError(f"{what} must be between 1 and {MAX_DIM:,}, not '{tok.text}'", tok.span,
                                        _AT_LEAST_ONE.get(what, _RANGE_HINT) if value < 1 else _RANGE_HINT,
                                        "E214"))
        return None
    return int(value)


_RANGE_HINT = f"use a value from 1 to {MAX_DIM:,}"


def _whole_hint(value: float | None) -> str:
    if value is not None and 1 <= value <= MAX_DIM:
        return f"write {math.floor(value)} or {math.ceil(value)}"
    return f"write a whole number from 1 to {MAX_DIM:,}"


def unit_rate(tok: Token, errors: list, example: str = "drop .05") -> float | None:
    if tok.kind != "number" or not 0 <= tok.number < 1:
        errors.append(SpecSemanticError(f"a dropout rate is in [0, 1), not '{tok.text}'", tok.span,
                                        f"write e.g. `{example}`", "E215"))
        return None
    return tok.number


def pair(tok: Token, errors: list, what: str) -> tuple[int, int] | None:
    dims = tok.dims
    if len(dims) != 2:
        errors.append(SpecSemanticError(f"a {what} has two sides (HxW), not '{tok.text}'", tok.span,
                                        "write e.g. 3x3 or 3x1", "E216"))
        return None
    if not all(1 <= d <= MAX_DIM for d in dims):
        errors.append(SpecSemanticError(f"a {what} side must be between 1 and {MAX_DIM:,}, not '{tok.text}'",
                                        tok.span, f"write each side from 1 to {MAX_DIM:,}, e.g. 3x3", "E214"))
        return None
    return dims


def square(n: int | None) -> tuple[int, int] | None:
    return (n, n) if n else None


def as_number(tok: Token) -> Token:
    """`2x` as the number 2, to check like any other."""
    return Token("number", tok.text[:-1], tok.span)


def explicit_padding(tok: Token, errors: list) -> tuple[int, int, int, int] | None:
    """`pad 3` (every side), `pad 1,2` (top and bottom 1, left and right 2), `pad 0,1,0,1` (top, bottom, left,
    right): zeros added around the input before a `valid` window."""
    values = tok.dims if tok.kind == "numbers" else (tok.number,) if tok.kind == "number" else ()
    if len(values) not in (1, 2, 4) or any(v != int(v) or not 0 <= v <= MAX_DIM for v in values):
        errors.append(SpecSemanticError(f"padding is 1, 2 or 4 whole numbers from 0 to {MAX_DIM:,}, not "
                                        f"'{tok.text}'", tok.span, "write e.g. `pad 1` (every side), `pad 1,2` "
                                        "(top/bottom, left/right) or `pad 0,1,0,1` (top, bottom, left, right)",
                                        "E218"))
        return None
    values = tuple(int(v) for v in values)
    if len(values) == 1:
        return values * 4
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    return values


def pair_or_int(tok: Token, errors: list, what: str) -> tuple[int, int] | None:
    if tok.kind == "size":
        return pair(tok, errors, what)
    n = positive_int(tok, errors, what)
    return (n, n) if n else None


def pair_from_match(m: re.Match, tok: Token, errors: list, what: str) -> tuple[int, int] | None:
    h = whole(m.group(1))
    w = whole(m.group(2)) if m.group(2) else h
    if min(h, w) < 1:
        errors.append(SpecSemanticError(f"a {what} must be at least 1, not '{tok.text}'", tok.span, _RANGE_HINT,
                                        "E214"))
        return None
    if max(h, w) > MAX_DIM:
        errors.append(SpecSemanticError(f"a {what} must be at most {MAX_DIM:,}, not '{tok.text}'", tok.span,
                                        _RANGE_HINT, "E214"))
        return None
    return (h, w)
