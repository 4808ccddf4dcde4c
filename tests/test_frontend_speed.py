"""What keeps `archdsl rf` quick (docs/performance.md, "Front end"), checked without timing anything.

- `archdsl rf` imports none of the heavy libraries that only other commands need;
- the built grammar is kept in a private cache, and that cache is never trusted blindly: a corrupt,
  foreign-owned or writable-by-others file is not loaded (unpickling it could run anyone's code), a
  symlink is not followed, and the key is the grammar itself, so an edited grammar is never served stale.
"""
from __future__ import annotations

import json
import os
import pickle
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from lark import Lark
from lark.exceptions import UnexpectedInput

from archdsl.language import parser
from archdsl.language.parser import _ToSpec
from spec_files import spec_paths

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("tensorflow", "keras", "graphviz", "jinja2")
GRAMMAR = parser.GRAMMAR.read_text(encoding="utf-8")


# ---------------------------------------------------------------- no heavy imports

# `python -m archdsl rf ...` as a user runs it (archdsl/__main__.py, then main_exit's sys.exit), every
# format, then a report of what got imported
RUN_RF = """
import contextlib, io, json, runpy, sys
out = io.StringIO()
statuses = []
for fmt in ("table", "json", "csv", "markdown"):
    sys.argv = ["archdsl", "rf", "specs/best.arch", "--format", fmt]
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module("archdsl", run_name="__main__", alter_sys=True)
        except SystemExit as exc:
            statuses.append(exc.code)
heavy = sorted(m for m in sys.modules if m.split(".")[0] in %r)
print(json.dumps({"statuses": statuses, "heavy": heavy, "printed": len(out.getvalue())}))
""" % (HEAVY,)


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_rf_imports_no_tensorflow_keras_graphviz_or_jinja2(tmp_path, cache):
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}  # cold: the grammar is built and saved
    if cache == "warm":
        subprocess.run([sys.executable, "-m", "archdsl", "rf", "specs/best.arch"], cwd=ROOT, env=env, check=True,
                       capture_output=True, timeout=120)
        assert list((tmp_path / "archdsl" / "grammar").glob("lalr-*.pickle"))
    done = subprocess.run([sys.executable, "-c", RUN_RF], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["statuses"] == [0, 0, 0, 0] and report["printed"] > 0
    assert report["heavy"] == [], f"archdsl rf imported {report['heavy']}"


# ---------------------------------------------------------------- the grammar cache

@pytest.fixture
def builds(monkeypatch):
    """Counts the parsers built from grammar text (a parser read from the cache is not built)."""
    built = []

    class CountingLark(Lark):
        def __init__(self, *args, **kwargs):
            built.append(args[0] if args else kwargs.get("grammar"))
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(parser, "Lark", CountingLark)
    return built


def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache" / "archdsl" / "grammar"


def the_file(directory: Path, grammar: str = GRAMMAR) -> Path:
    return parser.cache_file(directory, parser.cache_key(grammar))


def test_the_cache_dir_follows_xdg_and_else_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert parser.grammar_cache_dir() == tmp_path / "xdg" / "archdsl" / "grammar"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: ignore a relative one
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert parser.grammar_cache_dir() == tmp_path / "home" / ".cache" / "archdsl" / "grammar"


def test_built_once_then_read_from_a_private_directory(tmp_path, builds):
    directory = cache_dir(tmp_path)
    parser.load_parser(GRAMMAR, directory)
    assert len(builds) == 1
    assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(the_file(directory)).st_mode) == 0o600
    assert [p.name for p in directory.iterdir()] == [the_file(directory).name]  # no temporary file left
    parser.load_parser(GRAMMAR, directory)
    assert len(builds) == 1  # read, not built


def spec_files() -> list[Path]:
    found = [*(ROOT / p for p in spec_paths()), *ROOT.glob("tests/**/*.arch")]
    return sorted(p for p in found if p.is_file())


def test_the_cached_parser_reads_every_spec_as_a_built_one_does(tmp_path):
    directory = cache_dir(tmp_path)
    built = parser.load_parser(GRAMMAR, directory)
    cached = parser.load_parser(GRAMMAR, directory)
    assert isinstance(cached, Lark) and cached is not built
    files = spec_files()
    assert len(files) > 30
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace") + "\n"
        outcome = []
        for lark in (built, cached):
            try:
                spec = _ToSpec(str(path)).transform(lark.parse(text))  # positions included (Span)
                comments = [(t.type, t.line, t.column, str(t)) for t in lark.lex(text, dont_ignore=True)]
                outcome.append((spec, comments))
            except UnexpectedInput as exc:
                outcome.append((type(exc).__name__, exc.line, exc.column, sorted(getattr(exc, "expected", ()))))
            except Exception as exc:  # the transformer's own errors (E-codes) must match too
                outcome.append((type(exc).__name__, str(exc)))
        assert outcome[0] == outcome[1], path


def test_a_corrupt_cache_file_is_ignored_and_replaced(tmp_path, builds):
    directory = cache_dir(tmp_path)
    parser.load_parser(GRAMMAR, directory)
    path = the_file(directory)
    good = path.read_bytes()
    header = good.split(b"\n", 1)[0] + b"\n"
    for corrupt in (header + b"not a pickle", good[:len(good) // 2], b"", header):
        path.write_bytes(corrupt)
        os.chmod(path, 0o600)
        assert isinstance(parser.load_parser(GRAMMAR, directory), Lark)
        assert isinstance(parser._read_cached(path, parser.cache_key(GRAMMAR)), Lark)  # rebuilt, written again
    assert len(builds) == 5


MARKER = "marker-of-the-planted-pickle"


class Planted:
    """A pickle that, when loaded, writes a marker file: what an attacker would plant, harmlessly."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "unpickled"))


def planted(path: Path) -> bool:
    return MARKER.encode() in path.read_bytes()


def plant(directory: Path, marker: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    path = the_file(directory)
    key = parser.cache_key(GRAMMAR)
    path.write_bytes(parser.CACHE_FORMAT + b" " + key.encode() + b"\n" + pickle.dumps(Planted(marker)))
    os.chmod(path, 0o600)
    return path


def test_the_planted_pickle_does_run_when_loaded(tmp_path):
    """The test below means something: a trusted file with this content would run its payload."""
    marker = tmp_path / MARKER
    path = plant(cache_dir(tmp_path), marker)
    with open(path, "rb") as f:
        f.readline()
        with pytest.raises(Exception):
            Lark.load(f)
    assert marker.exists()


def test_a_file_others_can_write_is_not_loaded(tmp_path, builds):
    marker = tmp_path / MARKER
    directory = cache_dir(tmp_path)
    for mode in (0o620, 0o602):
        path = plant(directory, marker)
        os.chmod(path, mode)
        assert isinstance(parser.load_parser(GRAMMAR, directory), Lark)
        assert not marker.exists()
        assert not planted(path)  # replaced by our own
    assert len(builds) == 2


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
def test_a_file_owned_by_another_user_is_not_loaded(tmp_path, builds):
    marker = tmp_path / MARKER
    directory = cache_dir(tmp_path)
    path = plant(directory, marker)
    os.chown(path, 65534, 65534)  # nobody
    assert isinstance(parser.load_parser(GRAMMAR, directory), Lark)
    assert not marker.exists() and len(builds) == 1


def test_files_of_another_user_are_not_loaded_without_root(tmp_path, builds, monkeypatch):
    """The same for whoever runs the tests: the files are ours, so we become someone else (another
    effective uid); then the directory and the file are foreign, and nothing is read or written."""
    marker = tmp_path / MARKER
    directory = cache_dir(tmp_path)
    path = plant(directory, marker)
    monkeypatch.setattr(parser.os, "geteuid", lambda uid=os.geteuid(): uid + 1)
    assert isinstance(parser.load_parser(GRAMMAR, directory), Lark)
    assert not marker.exists() and len(builds) == 1
    assert planted(path) and sorted(directory.iterdir()) == [path]


def test_a_symlink_is_not_followed(tmp_path, builds):
    elsewhere = tmp_path / "elsewhere"
    parser.load_parser(GRAMMAR, elsewhere)  # a genuine cache file of ours, in another directory
    directory = cache_dir(tmp_path)
    directory.mkdir(parents=True, mode=0o700)
    the_file(directory).symlink_to(the_file(elsewhere))
    parser.load_parser(GRAMMAR, directory)
    assert len(builds) == 2  # built again: the link was not read
    assert not the_file(directory).is_symlink()  # and replaced by a file of our own


@pytest.mark.parametrize("mode", [0o770, 0o707])
def test_a_directory_others_can_write_is_neither_read_nor_written(tmp_path, builds, mode):
    directory = cache_dir(tmp_path)
    parser.load_parser(GRAMMAR, directory)
    os.chmod(directory, mode)
    marker = tmp_path / MARKER
    plant(directory, marker)
    os.chmod(directory, mode)  # plant() made it private again
    before = sorted(directory.iterdir())
    parser.load_parser(GRAMMAR, directory)
    assert not marker.exists() and len(builds) == 2
    assert sorted(directory.iterdir()) == before and planted(the_file(directory))


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a directory away needs root")
def test_a_directory_owned_by_another_user_is_neither_read_nor_written(tmp_path, builds):
    directory = cache_dir(tmp_path)
    marker = tmp_path / MARKER
    plant(directory, marker)
    os.chown(directory, 65534, 65534)
    parser.load_parser(GRAMMAR, directory)
    assert not marker.exists() and len(builds) == 1
    assert planted(the_file(directory))


# a grammar with one more statement (an unused rule would not do: Lark drops those)
EDITED = GRAMMAR.replace("_statement: model_decl", "_statement: test_only_decl\n          | model_decl", 1) \
    + '\ntest_only_decl: "testonlystatement"\n'
assert EDITED != GRAMMAR


def test_the_key_is_the_grammar_so_an_edited_grammar_is_built_anew(tmp_path, builds):
    directory = cache_dir(tmp_path)
    parser.load_parser(GRAMMAR, directory)
    old = the_file(directory)
    edited = parser.load_parser(EDITED, directory)
    assert builds == [GRAMMAR, EDITED]
    assert edited.parse("testonlystatement\n").children[0].data == "test_only_decl"
    assert the_file(directory, EDITED) != old and the_file(directory, EDITED).exists()
    assert not old.exists()  # the other grammar's parser is removed, so edits do not pile up files
    parser.load_parser(EDITED, directory)
    assert len(builds) == 2


def test_a_file_whose_header_names_another_grammar_is_not_served(tmp_path, builds):
    """A name and a content that disagree (a renamed or copied file): the first line decides, before
    anything is unpickled."""
    directory = cache_dir(tmp_path)
    parser.load_parser(GRAMMAR, directory)
    os.replace(the_file(directory), the_file(directory, EDITED))
    edited = parser.load_parser(EDITED, directory)
    assert builds == [GRAMMAR, EDITED] and edited.parse("testonlystatement\n")


def test_the_key_covers_lark_options_and_versions(monkeypatch):
    import lark
    key = parser.cache_key(GRAMMAR)
    assert parser.cache_key(EDITED) != key
    monkeypatch.setattr(lark, "__version__", "0.0.1")
    assert parser.cache_key(GRAMMAR) != key
    monkeypatch.undo()
    monkeypatch.setattr(parser, "LARK_OPTIONS", {**parser.LARK_OPTIONS, "maybe_placeholders": False})
    assert parser.cache_key(GRAMMAR) != key


def test_no_directory_means_no_cache(tmp_path, builds):
    parser.load_parser(GRAMMAR, None)
    parser.load_parser(GRAMMAR, None)
    assert len(builds) == 2
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    parser.load_parser(GRAMMAR, blocked / "grammar")  # cannot be created: built, nothing raised
    assert len(builds) == 3
