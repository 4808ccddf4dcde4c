"""How numbers and shapes are written for people: `3x3` for a non-square pair, `32x32x3`, `0.5`."""
from __future__ import annotations


def num(x: float):
    """An integral float as an int (`1.0` -> `1`), any other number as it is."""
    return int(x) if float(x).is_integer() else x


def pair(values) -> str:
    """`3` for a square pair, `3x1` otherwise (height first)."""
    a, b = values
    return f"{a}" if a == b else f"{a}x{b}"


def shape(dims) -> str:
    return "x".join(str(d) for d in dims)
