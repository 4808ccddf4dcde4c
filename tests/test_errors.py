"""Golden tests of the error messages: the corpus of bad specs in tests/bad/.

Each case is a pair:

    tests/bad/NAME.arch       the spec (it may be absent, as for `missing`, or a directory, as for `directory.arch`)
    tests/bad/NAME.expected   line 1: `exit N`, the exit status of `archdsl check tests/bad/NAME.arch`;
                              the rest: its exact stderr

The CLI runs in-process (`archdsl.cli.main`, once a case) with the repository root as the working directory
(tests/conftest.py changes to it), so messages name `tests/bad/NAME.arch`. A few cases also run as a
subprocess, to check the real exit status and that nothing else reaches the terminal.

Adding a case: write tests/bad/NAME.arch, then let the test write its .expected file:

    ARCHDSL_UPDATE_GOLDEN=1 python -m pytest tests/test_errors.py

That rewrites every .expected file from the current output. Read `git diff tests/bad` by eye before
committing: a golden file is only as good as the message in it. Besides the exact text, every message
is checked for its shape: `file:line:col: error[CODE]: ...` with the source line and a caret under the
column it names (whole-file problems such as a missing, binary or empty file name the path instead),
and never a traceback.
"""
from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
BAD = ROOT / "tests" / "bad"
UPDATE = os.environ.get("ARCHDSL_UPDATE_GOLDEN") == "1"
# with ARCHDSL_UPDATE_GOLDEN=1, a new NAME.arch gets its NAME.expected written
CASES = sorted({p.stem for p in BAD.glob("*.expected")} | ({p.stem for p in BAD.glob("*.arch")} if UPDATE else set()))

HEADER = re.compile(r"^(?:(?P<file>[^:\s]+):(?P<line>\d+):(?P<col>\d+): )?error\[(?P<code>E\d{3})\]: (?P<message>.+)$")
SOURCE = re.compile(r"^  (?P<line>\d+) \| (?P<text>.*)$")
CARET = re.compile(r"^  (?P<gutter> +) \| (?P<pad> *)(?P<carets>\^+)$")
# whole-file problems: no line to point at, so the message names the path
WHOLE_FILE_CODES = {"E101", "E102", "E201"}


def spec_path(name: str) -> str:
    return f"tests/bad/{name}.arch"


_RESULTS: dict[str, tuple[int, str, str]] = {}


def run_check(name: str) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `archdsl check tests/bad/NAME.arch`, run once a session."""
    if name not in _RESULTS:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            status = main(["check", spec_path(name)])
        _RESULTS[name] = (status, out.getvalue(), err.getvalue())
    return _RESULTS[name]


def golden_text(status: int, stderr: str) -> str:
    return f"exit {status}\n{stderr}"


def test_corpus_is_complete():
    assert len(CASES) >= 40, f"only {len(CASES)} cases in tests/bad"
    orphans = {p.stem for p in BAD.glob("*.arch")} - {p.stem for p in BAD.glob("*.expected")}
    assert UPDATE or not orphans, f"specs without a .expected file (run with ARCHDSL_UPDATE_GOLDEN=1): {sorted(orphans)}"
    # the whole-file cases exist as intended
    assert not (BAD / "missing.arch").exists()
    assert (BAD / "directory.arch").is_dir()
    assert b"\x00" in (BAD / "binary.arch").read_bytes()
    assert (BAD / "empty.arch").read_bytes() == b""


@pytest.mark.parametrize("name", CASES)
def test_golden(name):
    status, stdout, stderr = run_check(name)
    actual = golden_text(status, stderr)
    expected_file = BAD / f"{name}.expected"
    if UPDATE:
        expected_file.write_text(actual, encoding="utf-8")
    assert "Traceback" not in stderr
    assert stdout == "", "a bad spec prints nothing on stdout"
    assert actual == expected_file.read_text(encoding="utf-8")


@pytest.mark.parametrize("name", CASES)
def test_message_shape(name):
    """Every error: header with file:line:col (or the path, for a whole-file problem), then the source
    line and a caret under the column the header names, then one hint; a failed assert exits 1, anything
    else 2."""
    status, _, stderr = run_check(name)
    assert status in (1, 2)
    assert "Traceback" not in stderr
    blocks = stderr.rstrip("\n").split("\n\n")
    if len(blocks) > 1:
        assert blocks[-1] == f"{len(blocks) - 1} errors"
        blocks = blocks[:-1]
    codes = []
    for block in blocks:
        lines = block.split("\n")
        header = HEADER.match(lines[0])
        assert header, f"not an error header: {lines[0]!r}"
        codes.append(header["code"])
        hints = [line for line in lines[1:] if line.startswith("  hint: ")]
        assert len(hints) == 1 and lines[-1] == hints[0], f"every message says how to fix it:\n{block}"
        body = [line for line in lines[1:] if not line.startswith("  hint: ")]
        if header["file"] is None:
            assert header["code"] in WHOLE_FILE_CODES, f"an error without a position: {lines[0]!r}"
            assert spec_path(name) in header["message"]
            assert body == []
            continue
        assert header["file"] == spec_path(name)
        assert len(body) == 2, f"expected the source line and a caret line:\n{block}"
        source, caret = SOURCE.match(body[0]), CARET.match(body[1])
        assert source and caret, block
        assert source["line"] == header["line"]
        assert len(caret["gutter"]) == len(source["line"])
        assert len(caret["pad"]) + 1 == int(header["col"]), f"the caret is not under column {header['col']}"
        assert len(caret["pad"]) + len(caret["carets"]) <= max(len(source["text"]), 1) + 1
    assert status == (1 if set(codes) <= {"E301", "E302"} else 2)


@pytest.mark.parametrize("name", ["syntax_unexpected_char", "assert_params_fail", "missing"])
def test_subprocess(name):
    """The installed entry point, in a fresh interpreter: same stderr, same exit status, nothing else."""
    expected = (BAD / f"{name}.expected").read_text(encoding="utf-8")
    proc = subprocess.run([sys.executable, "-m", "archdsl.cli", "check", spec_path(name)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert golden_text(proc.returncode, proc.stderr) == expected
    assert proc.stdout == ""


def test_failed_asserts_name_the_actual_value():
    for name, actual in [("assert_params_fail", "params is 12,187"), ("assert_rf_fail", "rf is 5"),
                         ("assert_ops_fail", "uses conv, maxpool")]:
        status, _, stderr = run_check(name)
        assert status == 1 and actual in stderr


def test_several_files_report_every_file(capsys):
    """`check` goes on after a bad file, and exits with the worst status."""
    names = ["assert_rf_fail", "unknown_op_sepp", "missing"]
    status = main(["check", *map(spec_path, names)])
    err = capsys.readouterr().err
    assert status == 2
    for name in names:
        assert spec_path(name) in err


def test_a_file_full_of_errors_shows_the_first_fifty(tmp_path, capsys):
    """Like a compiler's error limit: 70 bad lines print the first 50 messages (in line order) and the count."""
    path = tmp_path / "many.arch"
    path.write_text("input 32x32x3\n" + "sep 3x3 0 same\n" * 70)
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("error[E") == 50
    lines = [int(m) for m in re.findall(r"many\.arch:(\d+):\d+: error", err)]
    assert lines == list(range(2, 52))
    assert err.rstrip().endswith("70 errors (the first 50 are shown)")


def test_a_long_line_is_shown_around_the_column_with_the_caret_under_it(tmp_path, capsys):
    """Past 200 characters only a window of the line is shown; tabs become spaces, the caret stays aligned."""
    path = tmp_path / "long.arch"
    path.write_text("input 8x8x1\nconv 1x1 1 same\t" + "bn\t" * 150 + "frob\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert "long.arch:2:467: error[E210]: unknown option 'frob'" in err
    source, caret = re.search(r"^  2 \| (.*)\n    \| ( *\^+)$", err, re.M).groups()
    assert len(source) == 103 and "\t" not in source  # columns 368-470 of 470: 99 characters before 'frob'
    assert source[caret.index("^"):][:len(caret.strip())] == "frob"


# (case, text written, what its hint says to write instead): every such hint leads to a spec that is accepted
HINTED_FIXES = [
    ("syntax_size_capital_x", "3X3", "3x3"),
    ("syntax_option_name_value", "conv 3x3 32 padding=same bn relu", "conv 3x3 32 same bn relu"),
    ("syntax_options_name_value", "conv 3x3 32 stride=2 padding=valid activation=relu", "conv 3x3 32 s2 valid relu"),
    ("syntax_train_name_value", "lr=0.1", "lr 0.1"),
    ("syntax_header_name_value", "classes=10", "classes 10"),
]


@pytest.mark.parametrize("name, written, fixed", HINTED_FIXES, ids=[case[0] for case in HINTED_FIXES])
def test_the_hint_written_into_the_spec_is_accepted(name, written, fixed, tmp_path, capsys):
    hint = next(line for line in (BAD / f"{name}.expected").read_text(encoding="utf-8").splitlines()
                if line.startswith("  hint: "))
    assert f"{fixed}`" in hint or hint.endswith(f" {fixed}"), hint
    text = (BAD / f"{name}.arch").read_text(encoding="utf-8")
    assert written in text
    path = tmp_path / f"{name}.arch"
    path.write_text(text.replace(written, fixed, 1), encoding="utf-8")
    assert main(["check", str(path)]) == 0, capsys.readouterr().err


def test_a_parameter_renamed_as_e222_hints_is_accepted(tmp_path, capsys):
    """`stride` is a word of the language; each name the hint offers, written in the header, the body and
    the uses, gives a spec that is accepted."""
    template = ("input 32x32x3\nclasses 10\nblock basic(filters, {p}=1) {{\n  conv 3x3 filters same stride {p} bn relu\n"
                "}}\nbasic(16)\nbasic(32, {p}=2)\nconv 1x1 classes same\ngap\nsoftmax\n")
    path = tmp_path / "basic.arch"
    path.write_text(template.format(p="stride"))
    assert main(["check", str(path)]) == 2
    hint = re.search(r"error\[E222\].*\n.*\n.*\n  hint: rename it here and in the block's body, e\.g\. to (.*)$",
                     capsys.readouterr().err, re.M)
    names = re.findall(r"`(\w+)`", hint[1])
    assert len(names) == 2 and "stride" not in names
    for name in names:
        path.write_text(template.format(p=name))
        assert main(["check", str(path)]) == 0, capsys.readouterr().err


def test_the_parallel_hint_leads_to_an_accepted_spec():
    """E262's hint, followed: a second branch, `branch {` ending its line, layers after it, `}` alone."""
    import archdsl
    text = (BAD / "parallel_one_branch.arch").read_text().replace(
        "    conv 1x1 8 same\n  }\n}", "    conv 1x1 8 same\n  }\n  branch {\n  }\n}")
    assert archdsl.loads(text).layers
