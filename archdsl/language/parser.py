"""Text -> written spec (spec.py), with positions. Syntax errors become SpecSyntaxError."""
from __future__ import annotations

import os
import re
import stat
import sys
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token as LarkToken, Transformer, UnexpectedCharacters, UnexpectedEOF, UnexpectedToken, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ..errors import ArchError, Span, SpecSyntaxError, source_lines
from ..fileio import shown_path
from .spec import (AssertStmt, BlockDef, Body, Branch, CallArg, Comment, HeaderStmt, LayerStmt, ParallelStmt, Param,
                   ResidualStmt, Spec, Token, TrainItem, TrainSection)

MAX_SOURCE_BYTES = 1_000_000
BOM = "\ufeff"  # a UTF-8 byte order mark (EF BB BF), which Windows editors write at the start of a file

# how a terminal is called in messages
TERMINAL_NAMES = {
    "SIZE": "a size like 3x3", "NUMBER": "a number", "NUMBERS": "numbers like 1,2", "FACTOR": "a factor like 2x",
    "NAME": "a name",
    "_NL": "end of line",
    "LBRACE": "'{'", "RBRACE": "'}'", "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'",
    "COMMA": "','", "STAR": "'*'", "EQUAL": "'='", "COMPARE": "a comparison (<=, >=, ==, ...)",
    "IN": "'in'", "NOT": "'not'", "$END": "end of file",
}


GRAMMAR = Path(__file__).parent / "grammar.lark"
LARK_OPTIONS = {"parser": "lalr", "propagate_positions": True, "maybe_placeholders": True}


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return load_parser(GRAMMAR.read_text(encoding="utf-8"), grammar_cache_dir())


# ---------------------------------------------------------------- the grammar cache
#
# Building the LALR tables from grammar.lark takes ~28 ms, a tenth of `archdsl rf`; loading them
# takes ~3 ms. So the built parser is kept, written with Lark's own `Lark.save` and read with
# `Lark.load` (a pickle), in a directory of the user's own: $XDG_CACHE_HOME/archdsl/grammar, else
# ~/.cache/archdsl/grammar, created 0700. Unpickling runs code, so a file is read only when the
# directory and the open file itself (fstat; a symlink is not followed) belong to this user and
# nobody else can write them. Its name and its first line carry a hash of the grammar, Lark's
# options and the versions of Lark and Python, so an edited grammar is never served stale. Anything
# else (no file yet, a corrupt or foreign file, a directory we cannot use) builds the parser as
# before. Why this, and not `Lark(cache=...)` or Lark's standalone generator: docs/performance.md.

CACHE_FORMAT = b"archdsl-grammar-cache 1"


def grammar_cache_dir() -> Path | None:
    """Where built parsers are kept; None: nowhere (no home, or no owners to check, as on Windows)."""
    if not hasattr(os, "geteuid"):
        return None
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, empty or relative: the XDG spec says to ignore it
        home = os.path.expanduser("~")
        if not os.path.isabs(home):
            return None
        base = os.path.join(home, ".cache")
    return Path(base) / "archdsl" / "grammar"


def cache_key(grammar: str) -> str:
    """A hash of what a built parser depends on: the grammar, Lark's options, Lark's and Python's versions."""
    import hashlib
    from lark import __version__ as lark_version
    parts = [CACHE_FORMAT.decode(), grammar, repr(sorted(LARK_OPTIONS.items())), lark_version,
             sys.implementation.cache_tag or sys.version]
    return hashlib.sha256("\0".join(parts).encode("utf-8")).hexdigest()


def cache_file(directory: Path, key: str) -> Path:
    return directory / f"lalr-{key}.pickle"


def load_parser(grammar: str, directory: Path | None) -> Lark:
    """The LALR parser of `grammar`: read from `directory` when a copy we trust is there, else built
    (and saved there when the directory is ours). `directory` None: no cache."""
    if directory is None:
        return Lark(grammar, **LARK_OPTIONS)
    key = cache_key(grammar)
    if _private_dir(directory):
        cached = _read_cached(cache_file(directory, key), key)
        if cached is not None:
            return cached
    parser = Lark(grammar, **LARK_OPTIONS)
    if _private_dir(directory, create=True):
        _write_cached(parser, directory, key)
    return parser


def _ours(st: os.stat_result) -> bool:
    """Owned by this (effective) user, and nobody else can write it."""
    return st.st_uid == os.geteuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _private_dir(directory: Path, create: bool = False) -> bool:
    try:
        if create:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(directory)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and _ours(st)


def _header(key: str) -> bytes:
    return CACHE_FORMAT + b" " + key.encode("ascii") + b"\n"


def _read_cached(path: Path, key: str) -> Lark | None:
    # O_NOFOLLOW: not a symlink; O_NONBLOCK: a FIFO put there cannot hang us (and fails S_ISREG)
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(fd)  # the open file itself: what is checked is what is read
        if not (stat.S_ISREG(st.st_mode) and _ours(st)) or f.readline(200) != _header(key):
            return None
        try:
            return Lark.load(f)
        except Exception:  # a truncated or garbled file of our own fails in many ways: build anew
            return None


def _write_cached(parser: Lark, directory: Path, key: str) -> None:
    """Write a private temporary file (mkstemp: 0600) and rename it over the final name, so a reader
    never sees half a file; then remove the parsers of other grammars, so edits do not pile up."""
    import tempfile
    final = cache_file(directory, key)
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".pickle")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_header(key))
            parser.save(f)
        os.replace(tmp, final)
    except Exception:  # a full disk, a read-only file system, ...: the parser works without its copy
        try:
            os.unlink(tmp)
        except OSError:
            pass
        return
    for old in directory.glob("lalr-*.pickle"):
        if old != final:
            try:
                old.unlink()
            except OSError:
                pass


def read_source(path: str, keep_bom: bool = False) -> str:
    """The text of a spec file, or a clear error for what is not one.

    A byte order mark at the start is dropped (columns of the first line do not count it), unless
    `keep_bom` (fmt, to write it back).

    Only a regular file is read, and at most MAX_SOURCE_BYTES + 1 bytes of it: a device (`/dev/zero`), a
    named pipe or a socket is refused by its type before it is opened, and opened without blocking, so a
    pipe put there after the check cannot hang us either (the open file is checked again). Messages name
    the file with its control characters escaped (fileio.shown_path)."""
    shown = shown_path(path)
    try:
        _refuse_what_is_not_a_file(shown, os.stat(path))
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError, ValueError):  # ValueError: a NUL in the path
        raise SpecSyntaxError(f"no such file: {shown}", code="E101", hint="check the path") from None
    except OSError as exc:
        raise SpecSyntaxError(f"cannot read {shown}: {exc.strerror or exc}", code="E101",
                              hint="check the path and its permissions") from None
    try:
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            _refuse_what_is_not_a_file(shown, st)
            data = f.read(MAX_SOURCE_BYTES + 1)
    except OSError as exc:
        raise SpecSyntaxError(f"cannot read {shown}: {exc.strerror or exc}", code="E101",
                              hint="check the path and its permissions") from None
    if len(data) > MAX_SOURCE_BYTES:
        size = f"{st.st_size:,} bytes" if st.st_size > MAX_SOURCE_BYTES else f"more than {MAX_SOURCE_BYTES:,} bytes"
        raise SpecSyntaxError(f"{shown} is {size}; a spec is at most {MAX_SOURCE_BYTES:,}",
                              code="E102", hint="is this really a .arch file?")
    if b"\x00" in data:
        raise SpecSyntaxError(f"{shown} is a binary file, not a spec", code="E102",
                              hint="a .arch spec is plain UTF-8 text")
    bom = data.startswith(BOM.encode("utf-8"))
    data = data[len(BOM.encode("utf-8")):] if bom else data
    try:
        return (BOM if bom and keep_bom else "") + data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line_start = before.rfind(b"\n") + 1
        column = len(data[line_start:exc.start].decode("utf-8", "replace")) + 1
        raise SpecSyntaxError(f"the file is not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
                              Span(shown, before.count(b"\n") + 1, column, column + 1), "save the file as UTF-8",
                              "E102", data.decode("utf-8", "replace")) from None


_NOT_FILES = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISCHR, "a character device"),
              (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _refuse_what_is_not_a_file(path: str, st: os.stat_result) -> None:
    """`path`: the file's name as shown."""
    if stat.S_ISDIR(st.st_mode):
        raise SpecSyntaxError(f"{path} is a directory, not a spec file", code="E101",
                              hint="name a .arch file inside it")
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _NOT_FILES if test(st.st_mode)), None)
        raise SpecSyntaxError(f"{path} is {kind}, not a spec file" if kind else f"{path} is not a regular file",
                              code="E101",
                              hint="a spec is a regular file; save the text to a .arch file and name that")


def parse_file(path: str | os.PathLike) -> Spec:
    return parse(read_source(path), os.fspath(path))


MAX_BRACE_DEPTH = 64


def _check_nesting(text: str, file: str) -> None:
    """Refuse absurdly deep `{` nesting before parsing: the tree is transformed recursively."""
    depth = 0
    for number, line in enumerate(source_lines(text), 1):
        code = line.split("#", 1)[0]
        for column, char in enumerate(code, 1):
            depth += (char == "{") - (char == "}")
            if depth > MAX_BRACE_DEPTH:
                raise SpecSyntaxError(f"braces nest deeper than {MAX_BRACE_DEPTH} levels", Span(file, number, column,
                                      column + 1), "flatten the structure with named blocks", "E106", text)


def parse(text: str, file: str = "<spec>") -> Spec:
    comments: list[Comment] = []
    _check_nesting(text, file)
    try:
        # the grammar wants every statement to end with a newline
        tree = _lark().parse(text + "\n")
        spec = _ToSpec(file).transform(tree)
    except UnexpectedInput as exc:
        raise _syntax_error(exc, text, file) from None
    except VisitError as exc:  # an error raised inside the transformer
        if isinstance(exc.orig_exc, ArchError):
            exc.orig_exc.source = text
            raise exc.orig_exc from None
        raise
    spec.text = text
    for lexed in _lark().lex(text + "\n", dont_ignore=True):
        if lexed.type == "COMMENT":
            comments.append(Comment(lexed.line, lexed.column, str(lexed)))
    spec.comments = comments
    return spec


def _span(file: str, tok: LarkToken) -> Span:
    end = tok.end_column if tok.end_line == tok.line else None
    return Span(file, tok.line, tok.column, end)


class _ToSpec(Transformer):
    """Lark tree -> spec.py dataclasses."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _tok(self, t: LarkToken) -> Token:
        kind = {"SIZE": "size", "NUMBER": "number", "NUMBERS": "numbers", "FACTOR": "factor"}.get(t.type, "name")
        return Token(kind, str(t), _span(self.file, t))

    def _args(self, items) -> list[Token]:
        return [self._tok(t) for t in items if isinstance(t, LarkToken)]

    def start(self, items):
        return Spec(self.file, "", [s for s in items if s is not None])

    def _where(self, meta) -> Span:
        return Span(self.file, meta.line, meta.column, meta.end_column if meta.end_line == meta.line else None)

    @v_args(meta=True)
    def model_decl(self, meta, items):
        return HeaderStmt("model", self._tok(items[0]), self._where(meta))

    @v_args(meta=True)
    def input_decl(self, meta, items):
        return HeaderStmt("input", self._tok(items[0]), self._where(meta))

    @v_args(meta=True)
    def classes_decl(self, meta, items):
        return HeaderStmt("classes", self._tok(items[0]), self._where(meta))

    def layer(self, items):
        count, op, call_args, *rest = items
        op_tok = self._tok(op)
        count_tok = self._tok(count) if count is not None else None
        first = count_tok.span if count_tok else op_tok.span
        return LayerStmt(op_tok, self._args(rest), count_tok, call_args,
                         Span(self.file, first.line, first.column, op_tok.span.end_column))

    def call_args(self, items):
        return [a for a in items if a is not None]

    def call_arg(self, items):
        # `[NAME "="] _arg`: an inlined rule gets no placeholder, so one item is a bare value
        name, value = items if len(items) == 2 else (None, items[0])
        return CallArg(self._tok(name) if name is not None else None, self._tok(value))

    @v_args(meta=True)
    def block_def(self, meta, items):
        name, params, *body = items
        return BlockDef(self._tok(name), params or [], [s for s in body if s is not None],
                        Span(self.file, meta.line, meta.column, meta.column + len("block")), meta.end_line)

    def params(self, items):
        return [p for p in items if p is not None]

    def param(self, items):
        name, default = items if len(items) == 2 else (items[0], None)
        return Param(self._tok(name), self._tok(default) if default is not None else None)

    @v_args(meta=True)
    def assert_compare(self, meta, items):
        metric, comparison, value = items
        return AssertStmt(self._tok(metric), str(comparison), self._tok(value), [], self._where(meta))

    @v_args(meta=True)
    def assert_member(self, meta, items):
        metric, negated, *members = items
        return AssertStmt(self._tok(metric), "not in" if negated is not None else "in", None,
                          [self._tok(m) for m in members if m is not None], self._where(meta))

    @v_args(meta=True)
    def train_section(self, meta, items):
        entries = [i for i in items if isinstance(i, TrainItem)]
        return TrainSection(entries, Span(self.file, meta.line, meta.column, meta.column + len("train")),
                            meta.end_line)

    @v_args(meta=True)
    def body(self, meta, items):
        return Body([s for s in items if s is not None], meta.line, meta.end_line)

    @v_args(meta=True)
    def residual(self, meta, items):
        count, merge, body, shortcut = items
        return ResidualStmt(self._tok(count) if count is not None else None,
                            self._tok(merge) if merge is not None else None, body, shortcut,
                            self._keyword(meta, count, "residual"), meta.end_line)

    @v_args(meta=True)
    def parallel(self, meta, items):
        count, merge, *branches = items
        return ParallelStmt(self._tok(count) if count is not None else None, self._tok(merge),
                            [b for b in branches if isinstance(b, Branch)], self._keyword(meta, count, "parallel"),
                            meta.end_line)

    def _keyword(self, meta, count, keyword: str) -> Span:
        """The span to underline for a multi-line statement: its count and keyword."""
        start = meta.column
        end = (count.end_column + 3 if count is not None else start) + len(keyword)
        return Span(self.file, meta.line, start, end)

    @v_args(meta=True)
    def branch(self, meta, items):
        return Branch(items[0], Span(self.file, meta.line, meta.column, meta.column + len("branch")))

    def train_item(self, items):
        return TrainItem(self._tok(items[0]), self._args(items[1:]))


def _syntax_error(exc: UnexpectedInput, text: str, file: str) -> SpecSyntaxError:
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
        span = _span(file, tok)
    elif before.rstrip().endswith("{") and expected <= {"_NL"}:
        message = "a '{' ends its line"
        span = _span(file, tok)
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
        span = _span(file, tok)
        hint = "end the branch before with a `}` on a line of its own, and write `branch {` on the next"
    else:
        message = f"unexpected {str(tok)!r}"
        span = _span(file, tok)
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
