"""One error hierarchy for the whole tool.

Every message has the same shape, so users learn to read it once:

    specs/bad.arch:3:1: error[E206]: unknown op 'sepp'
        3 | sepp 3x3 64 same
          | ^^^^
      hint: did you mean 'sep'?

`where` (file:line:col), `what` (the message), `how to fix it` (the hint).
Errors found by a stage are collected and raised together as `ArchErrors`.
Every code is one of archdsl/error_codes.py, the registry: an error with another is refused.
"""
from __future__ import annotations

import difflib
import functools
import os
import stat
from dataclasses import dataclass
from typing import Iterable, Sequence

from .display import terminal_text
from .error_codes import CODES, WARNINGS


@dataclass(frozen=True)
class Span:
    """A place in a source file: 1-based line and column, end column exclusive."""

    file: str
    line: int
    column: int
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def registered(code: str, where: str = "error") -> str:
    """`code`, if the registry (archdsl/error_codes.py) has it. One it lacks is archdsl's mistake, not the
    user's (a typo'd code, or a new one without its entry): an AssertionError, so any test reaching it fails."""
    if code not in CODES:
        raise AssertionError(f"{where}: error code {code!r} is not in archdsl/error_codes.py "
                             "(a typo? a new code needs an entry there)")
    return code


class ArchError(Exception):
    """Base of every error archdsl reports to a user.

    `exit_status` is what the CLI exits with: 2 = the spec or the command line is
    wrong, 1 = a constraint (`assert`) failed or the run failed.
    """

    exit_status = 2
    default_code = "E000"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        registered(cls.default_code, f"{cls.__name__}.default_code")

    def __init__(self, message: str, span: Span | None = None, hint: str | None = None,
                 code: str | None = None, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.span = span
        self.hint = hint
        self.code = registered(code or self.default_code, type(self).__name__)
        self.source = source  # full text of the file, to show the offending line

    def render(self, source: str | None = None) -> str:
        return render_finding("error", self.code, self.message, self.hint, self.span,
                              source if source is not None else self.source)

    def __str__(self) -> str:
        return self.render()


class SpecSyntaxError(ArchError):
    """The text does not follow the grammar."""
    default_code = "E100"


class SpecSemanticError(ArchError):
    """Grammatical, but meaningless: unknown op, bad value, shape below 1, ..."""
    default_code = "E200"


class ConstraintError(ArchError):
    """An `assert` line of the spec does not hold."""
    exit_status = 1
    default_code = "E300"


class DataError(ArchError):
    """A dataset is missing, malformed or does not fit the spec."""
    default_code = "E400"


class RunError(ArchError):
    """A training run cannot start, continue or be written."""
    exit_status = 1
    default_code = "E500"


class UsageError(ArchError):
    """The command line is wrong."""
    default_code = "E600"


SHOWN_ERRORS = 50  # at most this many messages of one file are printed


class ArchErrors(ArchError):
    """Several errors of one file, reported together (sorted by position)."""

    def __init__(self, errors: Sequence[ArchError]):
        self.errors = sorted(errors, key=lambda e: (e.span.line, e.span.column) if e.span else (0, 0))
        first = self.errors[0]
        super().__init__(first.message, first.span, first.hint, first.code, first.source)
        # a failed assert alone exits 1; any real spec error makes it 2
        self.exit_status = max(e.exit_status for e in self.errors)

    def render(self, source: str | None = None) -> str:
        # like a C compiler's error limit: past the first screenfuls, more messages only bury the first
        parts = [e.render(source) for e in self.errors[:SHOWN_ERRORS]]
        if len(self.errors) > SHOWN_ERRORS:
            parts.append(f"{len(self.errors)} errors (the first {SHOWN_ERRORS} are shown)")
        elif len(self.errors) > 1:
            parts.append(f"{len(self.errors)} errors")
        return "\n\n".join(parts)


@dataclass(frozen=True)
class SpecWarning:
    """What the analysis says of a spec it accepts: a layer that probably does not do what was meant.

    Rendered like an error, with a code of the registry's W3xx family (archdsl/error_codes.py `WARNINGS`):

        examples/resnet8.arch:10:1: warning[W302]: layer 9 (residual add): the merged paths' ...
          10 | residual {
             | ^^^^^^^^
          hint: ...

    `str()` is its one-line form (place, code, message, hint). The same warning of consecutive layers is one
    SpecWarning whose `layers` are all of them; `silenced_by` is the line of the `allow` (or the `# allow`
    comment) that silences it, None if it is said.
    """

    code: str
    message: str                    # what is wrong, starting with the layer(s): "layer 9 (residual add): ..."
    hint: str | None
    span: Span | None               # the first layer's place
    layers: tuple[int, ...]         # the layers it is about (1-based, as the table numbers them)
    silenced_by: int | None = None

    def __post_init__(self):
        if self.code not in WARNINGS:
            raise AssertionError(f"warning code {self.code!r} is not in archdsl/error_codes.py WARNINGS "
                                 "(a typo? a new code needs an entry there)")

    @property
    def silenced(self) -> bool:
        return self.silenced_by is not None

    def render(self, source: str | None = None) -> str:
        return render_finding("warning", self.code, self.message, self.hint, self.span, source)

    def __str__(self) -> str:
        where = f"{self.span}: " if self.span else ""
        return terminal_text(f"{where}[{self.code}] {self.message}" + (f" (hint: {self.hint})" if self.hint else ""))

    def to_dict(self) -> dict:
        """What JSON says of it."""
        return {"code": self.code, "message": self.message, "hint": self.hint,
                "line": self.span.line if self.span else None, "column": self.span.column if self.span else None,
                "layers": list(self.layers), "silenced": self.silenced, "silenced_by": self.silenced_by}


def raise_collected(errors: list[ArchError]) -> None:
    """Raise what a stage collected: nothing, the single error, or all of them."""
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ArchErrors(errors)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """'did you mean 'sep'?' for a near miss, else None."""
    matches = difflib.get_close_matches(word.lower(), list(choices), n=1, cutoff=0.6)
    return f"did you mean '{matches[0]}'?" if matches else None


def one_of(choices: Iterable[str]) -> str:
    return "one of: " + ", ".join(sorted(choices))


def render_finding(kind: str, code: str, message: str, hint: str | None, span, source: str | None) -> str:
    """`file:line:col: error[E206]: message`, the source line with a caret under the span, and `hint: ...`.
    Names in messages and hints come from files, folders and command lines: escaped, they cannot colour the
    terminal, move its cursor or forge a line."""
    if source is None and span is not None:
        source = _read_quietly(span.file)
    where = f"{terminal_text(str(span))}: " if span else ""
    lines = [f"{where}{kind}[{code}]: {terminal_text(message)}"]
    if span and source is not None:
        lines.extend(_caret_lines(source, span))
    if hint:
        lines.append(f"  hint: {terminal_text(hint)}")
    return "\n".join(lines)


READ_FOR_A_CARET = 1_000_001  # bytes: past the parser's limit (1,000,000) nothing was parsed to point into


def _read_quietly(path: str) -> str | None:
    """The source of an error found after parsing (e.g. by the analysis), to show its line: a regular file
    only (a FIFO named like the spec would block), read within a bound."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except (OSError, ValueError):
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(READ_FOR_A_CARET)
        return None if len(data) >= READ_FOR_A_CARET else data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    finally:
        os.close(fd)


@functools.lru_cache(maxsize=4)  # every error of a file shows a line of the same text
def source_lines(text: str) -> tuple[str, ...]:
    """The lines of a spec as the parser numbers them. Only a newline ends a line: `str.splitlines`
    also breaks at form feeds, U+2028 and other characters, and would show the wrong line under an error."""
    return tuple(line[:-1] if line.endswith("\r") else line for line in text.split("\n"))


def _caret_lines(source: str, span: Span) -> list[str]:
    text_lines = source_lines(source)
    if not 1 <= span.line <= len(text_lines):
        return []
    text, offset = text_lines[span.line - 1], 0
    if len(text) > 200:  # a pathological line: show the part around the column
        offset = max(0, span.column - 100)
        text = text[offset:offset + 200]
    # one character for one: tabs and other invisible characters as spaces keep the caret aligned
    text = "".join(c if c.isprintable() else " " for c in text)
    col = max(1, span.column - offset)
    width = max(1, (span.end_column or span.column + 1) - span.column)
    width = min(width, max(1, len(text) - col + 1))
    gutter = str(span.line)
    return [f"  {gutter} | {text}", f"  {' ' * len(gutter)} | {' ' * (col - 1)}{'^' * width}"]
