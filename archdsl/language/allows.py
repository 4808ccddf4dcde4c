"""Which warnings a spec silences: `allow W301 W302` lines (the whole file) and `# allow W301` comments at the end
of a layer's line (the layers written on that line: inside a block, the body's line silences every use).

A comment is such a pragma when its first word is `allow` and the next is a code (`W301`, or a typo of one:
`W31` is refused with a did-you-mean, not read as prose); words after the codes are free, e.g. a reason:
`# allow W302 as the reference model does`. The codes are the registry's (archdsl/error_codes.py `WARNINGS`).
"""
from __future__ import annotations

import re
from difflib import get_close_matches

from ..error_codes import CODES, WARNINGS
from ..errors import Span, SpecSemanticError
from ..ir import Allow, Layer
from .spec import AllowStmt, Comment, Spec

_PRAGMA = re.compile(r"#\s*allow\b[\s:]*(?P<codes>[A-Za-z]\d+(?:(?:\s*,\s*|\s+)[A-Za-z]\d+)*)", re.IGNORECASE)
_CODE = re.compile(r"[A-Za-z]\d+")


def read_allows(spec: Spec, layers: list[Layer], errors: list) -> tuple[Allow, ...]:
    """The spec's `allow` statements and pragmas, each code checked; a pragma on a line that writes no layer is
    an error (it would silence nothing)."""
    allows = []
    for stmt in spec.statements:
        if isinstance(stmt, AllowStmt):
            codes = _codes([(tok.text, tok.span) for tok in stmt.codes], errors)
            if codes:
                allows.append(Allow(codes=tuple(codes), line=stmt.span.line, columns=tuple(codes.values())))
    layer_lines = {layer.where.line for layer in layers}
    resolved = not errors  # after an error, layers may be missing: a pragma is not judged by them
    for comment in spec.comments:
        match = _PRAGMA.match(comment.text)
        if match is None:
            continue
        words = [(m.group(), _span(spec.file, comment, match.start("codes") + m.start(), len(m.group())))
                 for m in _CODE.finditer(match.group("codes"))]
        codes = _codes(words, errors)
        if resolved and comment.line not in layer_lines:
            errors.append(SpecSemanticError(
                f"`# allow` silences the layers written on its own line, and line {comment.line} writes none",
                _span(spec.file, comment, 0, match.end()),
                f"put it at the end of the layer's line (in a block: the line in its body), or write "
                f"`allow {' '.join(codes or [w for w, _ in words])}` on a line of its own for the whole file",
                "E271"))
        elif codes and comment.line in layer_lines:
            allows.append(Allow(codes=tuple(codes), line=comment.line, whole_file=False, columns=tuple(codes.values())))
    return tuple(allows)


def _codes(words: list[tuple[str, Span]], errors: list) -> dict[str, int]:
    """The warning codes written, upper-case, without repeats, each with its column; each unknown one is an
    error (E270)."""
    codes: dict[str, int] = {}
    for word, span in words:
        code = word.upper()
        if code in WARNINGS:
            codes.setdefault(code, span.column)
            continue
        known = "warnings are " + ", ".join(WARNINGS) + " (docs/warnings.md)"
        guess = get_close_matches(code, list(WARNINGS), n=1, cutoff=0.6)
        if code in CODES:
            hint = f"{code} is an error, which cannot be allowed: fix what it says; {known}"
        else:
            hint = f"did you mean {guess[0]}? {known}" if guess else known
        errors.append(SpecSemanticError(f"unknown warning code '{word}'", span, hint, "E270"))
    return codes


def _span(file: str, comment: Comment, offset: int, width: int) -> Span:
    return Span(file, comment.line, comment.column + offset, comment.column + offset + width)
