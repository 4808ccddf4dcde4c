"""How numbers and shapes are written for people: `3x3` for a non-square pair, `32x32x3`, `0.5`."""
from __future__ import annotations

import unicodedata


def num(x: float):
    """An integral float as an int (`1.0` -> `1`), any other number as it is."""
    return int(x) if float(x).is_integer() else x


def pair(values) -> str:
    """`3` for a square pair, `3x1` otherwise (height first)."""
    a, b = values
    return f"{a}" if a == b else f"{a}x{b}"


def shape(dims) -> str:
    return "x".join(str(d) for d in dims)


def terminal_text(value) -> str:
    """`value` for a terminal line: control characters (newline, escape, DEL, C1), format characters
    (bidi overrides, zero-width), line and paragraph separators and surrogates (a file name's
    undecodable bytes) are shown as Python escapes (`\\n`, `\\x1b`, `\\u202e`, `\\udcff`), so a path,
    class or file name cannot move the cursor, clear the screen, reorder the line or end it. Other
    text, non-ASCII letters included, is left as it is."""
    text = str(value)
    if text.isprintable():  # the common case; isprintable() is stricter (it refuses any space but " ")
        return text
    return "".join(ch.encode("unicode_escape").decode("ascii")
                   if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp") else ch
                   for ch in text)
