"""Text -> written spec (spec.py), with positions. Syntax errors become SpecSyntaxError (syntax_errors.py)."""
from __future__ import annotations

import os
import stat
import sys
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token as LarkToken, Transformer, v_args
from lark.exceptions import UnexpectedInput, VisitError

from ..errors import ArchError, Span, SpecSyntaxError, source_lines
from ..fileio import shown_path
from .spec import (AllowStmt, AssertStmt, BlockDef, Body, Branch, CallArg, ChooseStmt, Comment, HeaderStmt, LayerStmt,
                   ParallelStmt, Param, ResidualStmt, Spec, Token, TrainItem, TrainSection)
from .syntax_errors import syntax_error, token_span

MAX_SOURCE_BYTES = 1_000_000
BOM = "\ufeff"  # a UTF-8 byte order mark (EF BB BF), which Windows editors write at the start of a file

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
        raise syntax_error(exc, text, file) from None
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


class _ToSpec(Transformer):
    """Lark tree -> spec.py dataclasses."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _tok(self, t: LarkToken) -> Token:
        kind = {"SIZE": "size", "NUMBER": "number", "NUMBERS": "numbers", "FACTOR": "factor"}.get(t.type, "name")
        return Token(kind, str(t), token_span(self.file, t))

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

    def _listed(self, t: LarkToken) -> list[Token]:
        """A list's values: `[16,32]` without spaces lexes as one NUMBERS token (`pad 1,2`): split it."""
        if t.type != "NUMBERS":
            return [self._tok(t)]
        out, column = [], t.column
        for part in str(t).split(","):
            out.append(Token("number", part, Span(self.file, t.line, column, column + len(part))))
            column += len(part) + 1
        return out

    def count(self, items):
        return items[0]

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
    def allow_stmt(self, meta, items):
        return AllowStmt(self._args(items), Span(self.file, meta.line, meta.column, meta.column + len("allow")))

    @v_args(meta=True)
    def choose_stmt(self, meta, items):
        name, *values = items
        return ChooseStmt(self._tok(name), [tok for v in values if v is not None for tok in self._listed(v)],
                          Span(self.file, meta.line, meta.column, meta.column + len("choose")))

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
