"""Adversarial spec input: what a spec path or file can be besides a small text file.

- a device (`/dev/zero`), a named pipe, a file far larger than a spec: refused by type or size after
  reading at most the size limit plus one byte, never waiting for a writer. These run `archdsl` in a
  child process whose address space is limited (RLIMIT_AS), so a regression that reads a whole file
  fails with a MemoryError instead of swapping the machine, and a hang fails by the timeout;
- a UTF-8 byte order mark at the start (Windows editors write one): accepted and ignored (`fmt --write`
  keeps it: tests/test_cli.py);
- control characters in a file's name (`x\\n\\e[31m.arch`): printed escaped by `check`, `rf` and `fmt`,
  never raw to the terminal;
- a model cut short at an expansion limit: only the limit is reported, not errors the missing part
  would have answered.
"""
from __future__ import annotations

import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.cli import main
from archdsl.errors import ArchError
from archdsl.language.parser import MAX_SOURCE_BYTES, read_source

ROOT = Path(__file__).resolve().parent.parent

# The front end of `archdsl rf specs/best.arch` peaks at about 50 MB of address space (VmPeak, 2026-11);
# 256 MB leaves room for a cold grammar cache, and is far below what reading /dev/zero or a 4 GiB file takes.
ADDRESS_SPACE = 256 * 2**20
PEAK_RSS_KB = 100 * 1024  # what a refused or a normal spec may cost a whole `archdsl` process
# `archdsl ARGS` in a fresh interpreter; its own peak RSS (kB) on the last line of stderr. VmHWM, not
# getrusage's ru_maxrss: Linux keeps ru_maxrss across fork and exec, so a child of a large pytest process
# would report its parent's peak (1.1 GB beside the TensorFlow tests), while VmHWM is the new image's own.
RUN = """
import re, sys
from archdsl.cli import main
status = main(sys.argv[1:])
sys.stdout.flush()
with open("/proc/self/status") as status_file:
    peak = re.search(r"^VmHWM:\\s+(\\d+) kB", status_file.read(), re.M).group(1)
sys.stderr.write("peak_rss_kb %s\\n" % peak)
sys.exit(status)
"""


def run_limited(*argv: str, timeout: float = 60) -> tuple[int, str, str, int]:
    """(exit status, stdout, stderr without the RSS line, peak RSS in kB) of `archdsl ARGV`, run with its
    address space limited; a child that does not end within `timeout` is killed and the test fails."""
    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    done = subprocess.run([sys.executable, "-c", RUN, *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, preexec_fn=limit)
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    err, _, last = done.stderr.rstrip("\n").rpartition("\n")
    assert last.startswith("peak_rss_kb "), done.stderr[-2000:]
    return done.returncode, done.stdout, err + "\n" if err else "", int(last.split()[1])


def test_the_limit_leaves_room_for_a_real_spec():
    """The limit is not what fails the tests below: a real spec runs under it, well within the RSS bound."""
    status, out, _, rss = run_limited("rf", "specs/best.arch")
    assert status == 0 and "sep" in out
    assert rss < PEAK_RSS_KB


# ---------------------------------------------------------------- devices, pipes, huge files

NOT_A_FILE_HINT = "  hint: a spec is a regular file; save the text to a .arch file and name that\n"


@pytest.mark.parametrize("command", ["rf", "check", "fmt"])
def test_dev_zero_is_refused_by_type_without_reading_it(command):
    status, out, err, rss = run_limited(command, "/dev/zero", timeout=30)
    assert (status, out) == (2, "")
    assert err == "error[E101]: /dev/zero is a character device, not a spec file\n" + NOT_A_FILE_HINT
    assert rss < PEAK_RSS_KB


def test_a_symlink_to_a_device_is_refused_under_its_own_name(tmp_path):
    link = tmp_path / "spec.arch"
    link.symlink_to("/dev/zero")
    status, _, err, _ = run_limited("check", str(link), timeout=30)
    assert status == 2
    assert err == f"error[E101]: {link} is a character device, not a spec file\n" + NOT_A_FILE_HINT


@pytest.mark.parametrize("command", ["rf", "check", "fmt"])
def test_a_named_pipe_is_refused_without_waiting_for_a_writer(tmp_path, command):
    """Opening a FIFO for reading blocks until someone writes: the child is killed at the timeout if it does."""
    fifo = tmp_path / "spec.arch"
    os.mkfifo(fifo)
    status, out, err, _ = run_limited(command, str(fifo), timeout=30)
    assert (status, out) == (2, "")
    assert err == f"error[E101]: {fifo} is a named pipe (FIFO), not a spec file\n" + NOT_A_FILE_HINT


def test_a_sparse_file_far_larger_than_a_spec_is_refused_after_reading_the_limit(tmp_path):
    huge = tmp_path / "huge.arch"
    with open(huge, "wb") as f:
        f.truncate(4 * 2**30)  # 4 GiB of zeros that take no disk
    status, out, err, rss = run_limited("rf", str(huge), timeout=30)
    assert (status, out) == (2, "")
    assert err == (f"error[E102]: {huge} is 4,294,967,296 bytes; a spec is at most {MAX_SOURCE_BYTES:,}\n"
                   "  hint: is this really a .arch file?\n")
    assert rss < PEAK_RSS_KB


def test_the_size_limit_is_exact(tmp_path):
    at_limit, over = tmp_path / "at.arch", tmp_path / "over.arch"
    at_limit.write_bytes(b"#" * (MAX_SOURCE_BYTES - 1) + b"\n")
    over.write_bytes(b"#" * MAX_SOURCE_BYTES + b"\n")
    assert len(read_source(str(at_limit))) == MAX_SOURCE_BYTES
    with pytest.raises(ArchError, match=f"is {MAX_SOURCE_BYTES + 1:,} bytes") as caught:
        read_source(str(over))
    assert caught.value.code == "E102"


# ---------------------------------------------------------------- a byte order mark

BOM = b"\xef\xbb\xbf"
SPEC = b"model tiny\ninput 8x8x1\nconv 3x3 2 same\ngap\n"


def test_a_leading_byte_order_mark_is_ignored(tmp_path, capsys):
    path = tmp_path / "bom.arch"
    path.write_bytes(BOM + SPEC)
    assert read_source(str(path)) == SPEC.decode()
    assert main(["check", str(path)]) == 0
    assert main(["rf", str(path)]) == 0
    assert "error" not in capsys.readouterr().err


def test_columns_of_the_first_line_do_not_count_the_byte_order_mark(tmp_path, capsys):
    path = tmp_path / "bom.arch"
    path.write_bytes(BOM + b"input 8x8x1 ;\nconv 3x3 2 same\n")
    assert main(["check", str(path)]) == 2
    assert f"{path}:1:13: error[E103]: unexpected character ';'\n  1 | input 8x8x1 ;\n    |             ^\n" \
        in capsys.readouterr().err


def test_a_byte_order_mark_elsewhere_is_still_an_error(tmp_path, capsys):
    path = tmp_path / "bom.arch"
    path.write_bytes(BOM + BOM + SPEC)
    assert main(["check", str(path)]) == 2
    assert "1:1: error[E103]: unexpected character '\\ufeff'" in capsys.readouterr().err


# ---------------------------------------------------------------- control characters in file names

NAME = "x\n\x1b[31mred\u202e.arch"     # a newline, a colour escape and a right-to-left override
SHOWN = "x\\n\\x1b[31mred\\u202e.arch"
GOOD = "input 8x8x1\nconv 3x3 2 same\ngap\nassert params < 100\n"
BAD = "input 8x8x1\nsepp 3x3 2 same\n"
FAILS = "input 8x8x1\nconv 3x3 2 same\nassert params < 3\n"
WARNS = "input 2x2x1\nconv 3x3 1 same\nconv 3x3 1 same\n"   # rf covers the input: a warning naming the file
MESSY = "input   8x8x1\nconv 3x3 2 SAME\n"
EMPTY = ""


JUMPS = "input 9x9x3\nresidual {\n  conv 3x3 8 s2 valid\n} shortcut {\n  conv 6x6 8 valid\n}\n"  # the analysis' E264
CASES = [
    (["check"], GOOD, 0), (["rf"], GOOD, 0),
    (["check"], BAD, 2), (["rf"], BAD, 2), (["fmt"], BAD, 2), (["check"], JUMPS, 2),
    (["check"], FAILS, 1), (["rf"], FAILS, 1),
    (["check"], WARNS, 0), (["rf"], WARNS, 0),
    (["fmt", "--check"], MESSY, 1), (["check"], EMPTY, 2), (["check"], "input 8x8x1 \xff\n", 2),
    (["check"], None, 2), (["rf"], None, 2), (["fmt"], None, 2),   # no such file
]


@pytest.mark.parametrize("command, text, status", CASES, ids=[f"{' '.join(c)}-{i}" for i, (c, _, _) in enumerate(CASES)])
def test_control_characters_in_a_file_name_are_printed_escaped(tmp_path, capsys, monkeypatch, command, text, status):
    monkeypatch.chdir(tmp_path)
    if text is not None:
        Path(NAME).write_bytes(text.encode("latin-1" if "\xff" in text else "utf-8"))
    got = main([*command, NAME])
    out, err = capsys.readouterr()
    assert got == status, err
    printed = out + err
    assert SHOWN in printed
    for raw in ("\x1b", "\u202e", NAME):
        assert raw not in printed
    if "error[" in err and text not in (None, EMPTY):  # a positioned message still shows its line
        assert re.search(r"^  \d+ \| ", err, re.M), err


def test_a_failed_fmt_write_names_the_file_escaped(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path(NAME).write_text(MESSY)

    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    assert main(["fmt", "--write", NAME]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {SHOWN}: No space left on device" in err and "\x1b" not in err


# ---------------------------------------------------------------- expansion limits

LAYER_LIMIT = "1000 * residual {\n  1000 * residual {\n    relu\n  }\n}\n"
LAYER_LIMIT_NESTED = "1000 * residual {\n  1000 * residual {\n    residual {\n      relu\n    }\n  }\n}\n"
# statements that add no layer (uses of a block defined wrongly) stop at the 100,000-statement limit instead
STEP_LIMIT = ("block b(n, n) {\n  relu\n}\nconv 3x3 8 same\n"
              "residual {\n  1000 * residual {\n    1000 * residual {\n      b(1, 2)\n    }\n  }\n}\n")


@pytest.mark.parametrize("body, codes", [(LAYER_LIMIT, ["E228"]), (LAYER_LIMIT_NESTED, ["E228"]),
                                         (STEP_LIMIT, ["E222", "E228"])], ids=["layers", "nested", "steps"])
def test_a_model_cut_short_at_a_limit_reports_nothing_that_depends_on_the_missing_part(tmp_path, capsys, body,
                                                                                       codes):
    """The expansion stops at 10,000 layers or 100,000 statements: what the model would end with is unknown,
    so `classes` is not compared with it (it used to say `E208: the model ends with 3 outputs` first)."""
    path = tmp_path / "big.arch"
    path.write_text("input 32x32x3\nclasses 10\n" + body + "gap\ndense classes\nsoftmax\n")
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert re.findall(r"error\[(E\d+)\]", err) == codes, err


def test_an_error_naming_a_fifo_or_a_huge_file_renders_without_its_line(tmp_path):
    """An error found after parsing shows its line from the file it names (errors._read_quietly): a FIFO put
    there must not block the message, and a file past the parser's limit is not read whole to show one line."""
    import threading

    from archdsl.errors import SpecSemanticError, Span
    fifo = tmp_path / "spec.arch"
    os.mkfifo(fifo)
    huge = tmp_path / "huge.arch"
    huge.write_bytes(b"conv 3x3 8 same\n" * 70_000)   # 1.1 MB
    small = tmp_path / "small.arch"
    small.write_text("input 8x8x3\nconv 3x3 8 same\n", encoding="utf-8")
    rendered = {}

    def render_all():
        for path in (fifo, huge, small):
            rendered[path.name] = SpecSemanticError("bad", Span(str(path), 2, 1, 5), "fix it", "E206").render()

    worker = threading.Thread(target=render_all, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "rendering an error blocked on a FIFO"
    assert rendered["spec.arch"] == f"{fifo}:2:1: error[E206]: bad\n  hint: fix it"
    assert rendered["huge.arch"] == f"{huge}:2:1: error[E206]: bad\n  hint: fix it"
    assert rendered["small.arch"].split("\n")[1:3] == ["  2 | conv 3x3 8 same", "    | ^^^^"]
