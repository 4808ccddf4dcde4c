"""Lark's UnexpectedInput made a SpecSyntaxError a person can act on: positioned on what is wrong, with a hint
(a `name=value` on a layer line written as the language writes it, a size with a capital X, a `}` or `{` out of
place, the terminals the grammar expected at that point, named in words)."""
from __future__ import annotations

import re

from lark import Token as LarkToken, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken
from lark.exceptions import UnexpectedInput

from ..errors import Span, SpecSyntaxError, source_lines

# how a terminal is called in messages
TERMINAL_NAMES = {
    "SIZE": "a size like 3x3", "NUMBER": "a number", "NUMBERS": "numbers like 1,2", "FACTOR": "a factor like 2x",
    "NAME": "a name",
    "_NL": "end of line",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "STAR": "'*'", "EQUAL": "'='", "COMPARE": "a comparison (<=, >=, ==, ...)",
    "IN": "'in'", "NOT": "'not'", "$END": "end of file",
}


def token_span(file: str, tok: LarkToken) -> Span:
    """Where a Lark token is (to its end column, if it ends on its own line); parser.py positions the spec with it."""
    end = tok.end_column if tok.end_line == tok.line else None
    return Span(file, tok.line, tok.column, end)


def syntax_error(exc: UnexpectedInput, text: str, file: str) -> SpecSyntaxError:
    """The SpecSyntaxError (E103, E104 or E105) that Lark's `exc` in `text` becomes: a message, a span and a hint."""
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    lines = source_lines(text)
    before = lines[line - 1][:column - 1] if 1 <= line <= len(lines) else ""
    if isinstance(exc, UnexpectedCharacters):
        char = lines[line - 1][column - 1] if line <= len(lines) and column <= len(lines[line - 1]) else "?"
        size = _capital_x_size(lines[line - 1][column - 1:] if line <= len(lines) else "")
        if char == "}":
            message, hint = _brace_message(text, line, column)
        elif size:
            what = "factor" if size.upper().endswith("X") else "size"
            return SpecSyntaxError(f"'{size}' is not a {what}: the x in it is a capital X",
                                   Span(file, line, column, column + len(size)),
                                   f"write {what}s with a lower-case x: {size.lower()}", "E103", text)
        else:
            message = f"unexpected character {char!r}"
            hint = _CHARACTER_HINTS.get(char) or _expected_hint(exc.allowed, text, line, column)
        return SpecSyntaxError(message, Span(file, line, column, column + 1), hint, "E103", text)
    if isinstance(exc, UnexpectedEOF) or (isinstance(exc, UnexpectedToken) and exc.token.type == "$END"):
        # the grammar ends every line itself, so only an open `{` makes the end of the file unexpected
        unclosed = _open_braces(text, len(lines) + 1, 1)
        o_line, o_column = unclosed[-1] if unclosed else (max(1, len(lines)), 1)
        return SpecSyntaxError("this '{' is never closed: the file ends inside it", Span(file, o_line, o_column,
                               o_column + 1), "close it with a `}` on a line of its own", "E104", text)
    assert isinstance(exc, UnexpectedToken)
    tok = exc.token
    expected = set(exc.expected or ())
    hint = _expected_hint(expected, text, line, column)
    if tok.type == "_NL":
        message = "the line ends too early"
        span = Span(file, line, column, column + 1)
        if before.rstrip().endswith("*"):
            hint = "write what to repeat after the `*`, e.g. `3 * sep 3x3 64 same`"
    elif tok.type == "RBRACE":
        message, hint = _brace_message(text, line, column)
        span = token_span(file, tok)
    elif before.rstrip().endswith("{") and expected <= {"_NL"}:
        message = "a '{' ends its line"
        span = token_span(file, tok)
        hint = "write the body on the lines after it, and the closing `}` on a line of its own"
    elif tok.type == "EQUAL" and (written := _name_value(text, line, column)) is not None:
        message, span, hint = written
        span = Span(file, line, span[0], span[1])
    elif tok.type == "LBRACE" and before.split("#", 1)[0].strip().lower() == "shortcut":
        message = "a shortcut belongs to the residual just closed, on the line of its `}`"
        start = len(before) - len(before.lstrip()) + 1
        span = Span(file, line, start, start + len("shortcut"))
        hint = "write `} shortcut {` on one line, as in `residual { ... } shortcut { conv 1x1 64 s2 same }`"
    elif tok.type == "BRANCH" and before.rstrip().endswith("}") and _inside(text, line, column, "parallel"):
        message = "each `branch {` starts a line of its own"
        span = token_span(file, tok)
        hint = "end the branch before with a `}` on a line of its own, and write `branch {` on the next"
    else:
        message = f"unexpected {str(tok)!r}"
        span = token_span(file, tok)
    return SpecSyntaxError(message, span, hint, "E105", text)


_SIZE_WITH_CAPITAL_X = re.compile(r"\d+(?:[xX]\d+)*[xX]?(?![A-Za-z0-9_.])")


def _capital_x_size(rest: str) -> str | None:
    """`3X3` or `2X` at the start of `rest`: a size or factor the lexer does not take (its x is upper-case)."""
    m = _SIZE_WITH_CAPITAL_X.match(rest)
    return m.group() if m and "X" in m.group() else None


_NAME_VALUE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*([A-Za-z0-9_.+-][^\s#=,()]*)")
_WHOLE = re.compile(r"\d+")
_ACTIVATION_WORDS = ("relu", "relu6", "swish", "gelu", "sigmoid", "tanh", "elu", "softmax", "linear")


def _as_written(name: str, value: str) -> str | None:
    """How the language writes a layer's `name=value` (`padding=same` -> `same`, `stride=2` -> `s2`), or None."""
    n, v = name.lower(), value.lower()
    number = re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", v) is not None
    if n == "padding" and v in ("same", "valid"):
        return v
    if n in ("padding", "pad") and re.fullmatch(r"\d+(,\d+)*", v):
        return f"pad {v}"
    if n in ("stride", "strides") and re.fullmatch(r"\d+(x\d+)?", v):
        return f"s{v}"
    if n in ("dilation", "dilation_rate") and re.fullmatch(r"\d+(x\d+)?", v):
        return f"d{v}"
    if n == "activation" and v in _ACTIVATION_WORDS:
        return v
    if n in ("drop", "dropout") and number:
        return f"drop {v}"
    if n in ("dm", "depth_multiplier", "groups") and _WHOLE.fullmatch(v):
        return f"{'groups' if n == 'groups' else 'dm'} {v}"
    if n in ("bias", "use_bias") and v in ("true", "false", "1", "0", "yes", "no"):
        return "bias" if v in ("true", "1", "yes") else "nobias"
    if n in ("kernel", "kernel_size", "pool_size", "size") and (_WHOLE.fullmatch(v) or re.fullmatch(r"\d+x\d+", v)):
        return v if "x" in v else f"{v}x{v}"
    if n in ("filters", "units", "channels") and (_WHOLE.fullmatch(v) or v == "classes"):
        return v
    if n == "interpolation" and v in ("nearest", "bilinear"):
        return v
    return None


def _name_value(text: str, line: int, column: int) -> tuple[str, tuple[int, int], str] | None:
    """A `name=value` outside parentheses (`conv 3x3 32 padding=same`, `lr=0.1` in a train section): the
    message, its (start, end) columns and a hint that writes it as the language does, or None."""
    code = source_lines(text)[line - 1].split("#", 1)[0]
    if code[:column - 1].count("(") > code[:column - 1].count(")") or \
            code.split()[0].lower() in ("assert", "block", "residual", "parallel", "branch", "}"):
        return None
    pair = next((m for m in _NAME_VALUE.finditer(code) if m.start() < column - 1 < m.end()), None)
    if pair is not None and _inside(text, line, column, "train"):
        return f"'{pair.group()}': a train setting is not written as name=value", \
            (pair.start() + 1, pair.end() + 1), f"write the setting and its value apart: " \
            f"`{pair.group(1)} {pair.group(2)}`"
    if pair is None or pair.start(1) == len(code) - len(code.lstrip()):  # `model=m`: the statement's keyword
        words = code.replace("=", " = ").split()
        if words and words[0].lower() in ("model", "input", "classes") and len(words) >= 3:
            fixed = f"{words[0]} {' '.join(words[2:])}"
            return (f"`{words[0]}` is followed by its value, without `=`", (column, column + 1),
                    f"write `{fixed}`")
        return None
    name, value = pair.group(1), pair.group(2)
    span = (pair.start() + 1, pair.end() + 1)
    message = f"'{pair.group()}': options are not written as name=value"
    fix = _as_written(name, value)
    if fix is None:
        return message, span, ("an option is a word (`same`, `s2`, `relu`) or a word and its value (`drop .05`), "
                               "without `=`; docs/language.md lists each op's options")
    pairs = list(_NAME_VALUE.finditer(code))
    fixes = [_as_written(m.group(1), m.group(2)) for m in pairs]
    example = ""
    if None not in fixes:
        line_text = code
        for m, f in reversed(list(zip(pairs, fixes))):
            line_text = line_text[:m.start()] + f + line_text[m.end():]
        example = f": `{' '.join(line_text.split())}`"
    return message, span, f"write it as `{fix}`{example}"


_CHARACTER_HINTS = {"/": "comments start with `#`", ";": "write one statement a line, without `;`",
                    '"': "names and numbers are written without quotes", "'": "names and numbers are written "
                    "without quotes"}


def _open_braces(text: str, line: int, column: int) -> list[tuple[int, int]]:
    """(line, column) of each `{` still open before a position."""
    stack: list[tuple[int, int]] = []
    for number, raw in enumerate(source_lines(text)[:line], 1):
        code = raw.split("#", 1)[0]
        if number == line:
            code = code[:column - 1]
        for col, char in enumerate(code, 1):
            if char == "{":
                stack.append((number, col))
            elif char == "}" and stack:
                stack.pop()
    return stack


def _brace_message(text: str, line: int, column: int) -> tuple[str, str]:
    if _open_braces(text, line, column):
        return "a '}' goes on a line of its own", "move it to the next line"
    return "'}' without a matching '{'", "remove it, or open a block with `block NAME {`"


def _expected_hint(expected, text: str, line: int, column: int) -> str | None:
    expected = set(expected or ())
    # LALR merges states, so the expected set can name closers that nothing on the line opened
    lines = source_lines(text)
    before = lines[line - 1][:column - 1].split("#", 1)[0] if 1 <= line <= len(lines) else ""
    in_parens, in_list = before.count("(") > before.count(")"), before.count("[") > before.count("]")
    if not in_parens:
        expected -= {"RPAR", "EQUAL"}
    if not in_list:
        expected -= {"RSQB"}
    if not (in_parens or in_list):
        expected -= {"COMMA"}
    if not _open_braces(text, line, column):
        expected -= {"RBRACE"}
    if "SHORTCUT" in expected and not _closes_a_residual(text, line, before):
        expected -= {"SHORTCUT"}  # the same LALR merging: only a residual's `}` takes a shortcut
    names = sorted({TERMINAL_NAMES.get(e, repr(e.lower())) for e in expected})
    if not names:
        return None
    if len(names) > 6:
        names = names[:6] + ["..."]
    return "expected " + " or ".join(names) if len(names) <= 2 else "expected one of: " + ", ".join(names)


def _closes_a_residual(text: str, line: int, before: str) -> bool:
    """Whether the `}` that ends `before` (the start of `line`) closes a `residual {`."""
    closing = before.rstrip()
    return closing.endswith("}") and _inside(text, line, len(closing), "residual")


def _inside(text: str, line: int, column: int, keyword: str) -> bool:
    """Whether the innermost `{` open at a position is on a line that says `keyword` before it."""
    opened = _open_braces(text, line, column)
    if not opened:
        return False
    o_line, o_column = opened[-1]
    return keyword in (w.lower() for w in source_lines(text)[o_line - 1][:o_column - 1].split())
