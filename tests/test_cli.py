"""The `archdsl` command line: version, help, `rf` formats, `check` exit status, `fmt --check/--write`,
usage errors, and that the analysis commands never import TensorFlow.

Runs `archdsl.cli.main` in-process (tests/conftest.py makes the repo root the working directory);
the import test runs in a fresh interpreter.
"""
from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from archdsl import __version__
from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
USAGE_ERROR = re.compile(r"^error\[E6\d\d\]: .+\n  hint: .+\n$")
LAYER_KEYS = {"index", "line", "op", "kernel", "stride", "dilation", "padding", "output_shape", "rf", "jump",
              "start", "params", "trainable_params", "macs"}

MESSY = "model  tiny\ninput 16x16x3\nclasses 10\nsep 3x3 8 same drop .05 bn relu   # first\n" \
        "sep 3x3 classes same\ngap\nsoftmax\n"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    try:
        status = main(list(argv))
    except SystemExit as exc:  # argparse's --help and --version
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


# ---------------------------------------------------------------- version and help

def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0
    assert out.strip() == f"archdsl {__version__}"


def test_help_mentions_examples(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    assert "examples:" in out
    assert "archdsl rf specs/base.arch" in out
    for command in ("rf", "check", "fmt"):
        assert command in out


def test_no_command_prints_help_and_exits_2(capsys):
    status, out, _ = run(capsys)
    assert status == 2 and "usage: archdsl" in out


# ---------------------------------------------------------------- rf

def test_rf_json_shape(capsys):
    status, out, err = run(capsys, "rf", "specs/best.arch", "--format", "json")
    assert status == 0, err
    data = json.loads(out)
    assert {"name", "input", "layers", "total", "warnings"} <= set(data)
    assert data["name"] == "best" and data["input"] == [32, 32, 3]
    assert len(data["layers"]) == 14
    for i, layer in enumerate(data["layers"], 1):
        assert LAYER_KEYS <= set(layer), LAYER_KEYS - set(layer)
        assert layer["index"] == i
        assert isinstance(layer["line"], int) and isinstance(layer["params"], int)
    first = data["layers"][0]
    assert first["op"] == "sep" and first["kernel"] == [3, 3] and first["padding"] == "same"
    assert first["output_shape"] == [32, 32, 16] and first["rf"] == [3, 3]
    assert data["total"]["params"] == sum(layer["params"] for layer in data["layers"]) == 76_995


def test_rf_csv_parses(capsys):
    status, out, _ = run(capsys, "rf", "specs/base.arch", "--format", "csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 12
    assert {"index", "line", "op", "output_shape", "params", "macs"} <= set(rows[0])
    assert [int(r["index"]) for r in rows] == list(range(1, 13))
    assert sum(int(r["params"]) for r in rows) == 80_203


def test_rf_markdown_has_a_header_row(capsys):
    status, out, _ = run(capsys, "rf", "specs/best.arch", "--format", "markdown")
    assert status == 0
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| #"))
    assert re.fullmatch(r"\|(-+:?\|)+", lines[header + 1].replace("---:", "---"))
    assert lines[header].count("|") == lines[header + 1].count("|") == lines[header + 2].count("|")
    assert "`sep 3x3 16 same drop 0.05 bn relu`" in lines[header + 2]


def test_rf_markdown_shows_names_as_written(capsys, tmp_path):
    """`__net__` is a valid name and Markdown's bold; rendered (CommonMark, keras' own dependency), the model
    and block names read as written, with no emphasis."""
    markdown_it = pytest.importorskip("markdown_it")
    spec = tmp_path / "u.arch"
    spec.write_text("model __my_net__\ninput 8x8x3\nblock __b__(c) {\n  conv 3x3 c same\n}\n__b__(4)\ngap\n")
    status, out, _ = run(capsys, "rf", str(spec), "--format", "markdown")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(out)
    assert status == 0 and "<em>" not in html
    assert "<strong>__my_net__</strong>" in html and "<td>__b__(4)#1</td>" in html


def test_rf_table_default(capsys):
    status, out, _ = run(capsys, "rf", "specs/best.arch")
    assert status == 0
    assert "total params: 76,995" in out


def test_rf_on_a_failing_assert_exits_1(capsys):
    status, out, _ = run(capsys, "rf", "tests/bad/assert_params_fail.arch")
    assert status == 1 and "FAIL" in out


# ---------------------------------------------------------------- check

@pytest.mark.parametrize("files, status", [
    (["specs/base.arch", "specs/best.arch"], 0),
    (["specs/base.arch", "tests/bad/assert_rf_fail.arch"], 1),
    (["tests/bad/assert_rf_fail.arch", "specs/best.arch", "tests/bad/unknown_op_sepp.arch"], 2),
    (["tests/bad/unknown_op_sepp.arch", "tests/bad/assert_rf_fail.arch"], 2),
])
def test_check_exits_with_the_worst_status(capsys, files, status):
    got, out, err = run(capsys, "check", *files)
    assert got == status
    for f in files:
        assert f in out + err  # every file is reported, good or bad
    assert out.count(": ok (") == sum(1 for f in files if f.startswith("specs/"))
    assert "Traceback" not in err


# ---------------------------------------------------------------- fmt

def test_fmt_check(tmp_path, capsys):
    messy = tmp_path / "messy.arch"
    messy.write_text(MESSY)
    status, _, err = run(capsys, "fmt", str(messy), "--check")
    assert status == 1 and "not formatted" in err
    assert messy.read_text() == MESSY  # --check never writes

    status, formatted, _ = run(capsys, "fmt", str(messy))
    assert status == 0
    clean = tmp_path / "clean.arch"
    clean.write_text(formatted)
    assert run(capsys, "fmt", str(clean), "--check")[0] == 0


def test_fmt_write_rewrites_and_keeps_a_formatted_file_identical(tmp_path, capsys):
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)
    status, out, _ = run(capsys, "fmt", str(path), "--write")
    assert status == 0 and out == ""
    formatted = path.read_bytes()
    assert formatted.decode() == ("model tiny\ninput 16x16x3\nclasses 10\nsep 3x3 8 same drop 0.05 bn relu  # first\n"
                                  "sep 3x3 classes same\ngap\nsoftmax\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.arch"]  # no temporary file left behind

    before = path.stat()
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    assert path.read_bytes() == formatted
    assert path.stat().st_mtime_ns == before.st_mtime_ns and path.stat().st_ino == before.st_ino  # not touched


def test_fmt_write_is_atomic(tmp_path, capsys, monkeypatch):
    """A failure while replacing the file leaves the original intact and no temporary file."""
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    status, _, err = run(capsys, "fmt", str(path), "--write")
    assert status != 0 and "Traceback" not in err
    assert "cannot write" in err
    assert path.read_text() == MESSY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.arch"]


FORMATTED = MESSY.replace("model  tiny", "model tiny").replace(".05", "0.05").replace("relu   #", "relu  #")


def test_fmt_write_through_a_symlink_formats_its_target_and_keeps_the_link(tmp_path, capsys):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "spec.arch"
    target.write_text(MESSY)
    link = tmp_path / "link.arch"
    link.symlink_to("real/spec.arch")
    assert run(capsys, "fmt", str(link), "--write")[0] == 0
    assert link.is_symlink() and os.readlink(link) == "real/spec.arch"
    assert target.read_text() == FORMATTED
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["link.arch", "real", "spec.arch"]  # no temporary files


def test_fmt_write_keeps_the_mode_and_the_hard_links(tmp_path, capsys):
    path, other = tmp_path / "spec.arch", tmp_path / "other-name.arch"
    path.write_text(MESSY)
    path.chmod(0o750)
    os.link(path, other)
    inode = path.stat().st_ino
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    st = path.stat()
    assert (st.st_mode & 0o7777, st.st_nlink, st.st_ino) == (0o750, 2, inode)
    assert other.read_text() == FORMATTED
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other-name.arch", "spec.arch"]


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755], ids=oct)
def test_fmt_write_keeps_the_mode_of_a_file(tmp_path, capsys, mode):
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)
    path.chmod(mode)
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    assert path.read_text() == FORMATTED and path.stat().st_mode & 0o7777 == mode


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="giving a file away needs root")
@pytest.mark.parametrize("chown_fails", [False, True], ids=["root", "not-allowed"])
def test_fmt_write_keeps_the_owner(tmp_path, capsys, monkeypatch, chown_fails):
    """Another user's file, which we may write: root gives the new file back to its owner; a user who may not
    (simulated: fchown refused) rewrites the file in place instead, which keeps its owner too."""
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)
    os.chown(path, 12345, 54321)
    path.chmod(0o664)
    inode = path.stat().st_ino
    if chown_fails:
        def refuse(*_):
            raise PermissionError(1, "Operation not permitted")
        monkeypatch.setattr(os, "fchown", refuse)
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    st = path.stat()
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (12345, 54321, 0o664)
    assert path.read_text() == FORMATTED
    assert (st.st_ino == inode) == chown_fails  # in place only when it had to be
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.arch"]


def test_fmt_write_keeps_extended_attributes(tmp_path, capsys):
    """An ACL or a user.* attribute belongs to the file: a new file would not have it, so it is rewritten in place."""
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)
    try:
        os.setxattr(path, "user.archdsl-test", b"kept")
    except (AttributeError, OSError):
        pytest.skip("no user extended attributes on this file system")
    inode = path.stat().st_ino
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    assert path.read_text() == FORMATTED and path.stat().st_ino == inode
    assert os.getxattr(path, "user.archdsl-test") == b"kept"


def test_fmt_write_into_a_hard_linked_file_on_a_full_disk_changes_nothing(tmp_path, capsys, monkeypatch):
    """In place, the space for a longer text is reserved before a byte is written: a full disk leaves the file
    as it was, and the message names it."""
    path = tmp_path / "spec.arch"
    path.write_text("input 8x8x1\nconv 3x3 2 same drop .05\n")  # fmt writes `0.05`: one byte longer
    os.link(path, tmp_path / "other.arch")

    def full(*_):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    status, _, err = run(capsys, "fmt", str(path), "--write")
    assert status == 1 and "Traceback" not in err
    assert f"cannot write {path}: No space left on device" in err
    assert path.read_text() == "input 8x8x1\nconv 3x3 2 same drop .05\n"


def test_fmt_write_in_a_folder_that_takes_no_new_file_writes_in_place(tmp_path, capsys, monkeypatch):
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)
    inode = path.stat().st_ino

    def refuse(*_, **__):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    assert path.read_text() == FORMATTED and path.stat().st_ino == inode


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write any file")
def test_fmt_write_refuses_a_read_only_file(tmp_path, capsys):
    path = tmp_path / "spec.arch"
    path.write_text(MESSY)
    path.chmod(0o444)
    status, _, err = run(capsys, "fmt", str(path), "--write")
    assert status == 1 and f"cannot write {path}: Permission denied" in err
    assert path.read_text() == MESSY


def test_fmt_keeps_a_files_byte_order_mark(tmp_path, capsys):
    """A spec saved by a Windows editor starts with a UTF-8 BOM: `fmt --write` formats the text after it and
    keeps it (the editor keeps writing one), `fmt --check` does not count it, plain `fmt` prints the text
    without it."""
    bom = b"\xef\xbb\xbf"
    path = tmp_path / "spec.arch"
    path.write_bytes(bom + MESSY.encode())
    status, formatted, _ = run(capsys, "fmt", str(path))
    assert status == 0 and formatted.startswith("model tiny\n")
    assert run(capsys, "fmt", str(path), "--check")[0] == 1
    assert run(capsys, "fmt", str(path), "--write")[0] == 0
    assert path.read_bytes() == bom + formatted.encode()
    assert run(capsys, "fmt", str(path), "--check")[0] == 0
    path.write_bytes(formatted.encode())  # and a file without one does not get one
    assert run(capsys, "fmt", str(path), "--write")[0] == 0 and path.read_bytes() == formatted.encode()


def test_fmt_refuses_a_bad_spec(capsys):
    status, out, err = run(capsys, "fmt", "tests/bad/unknown_op_sepp.arch")
    assert status == 2 and out == "" and "unknown op 'sepp'" in err


def test_fmt_takes_several_files_like_check(tmp_path, capsys):
    """Each file in turn: a bad one is reported and the others are still formatted; the worst status."""
    first, second = tmp_path / "first.arch", tmp_path / "second.arch"
    first.write_text(MESSY)
    second.write_text(MESSY.replace("tiny", "other"))
    status, _, err = run(capsys, "fmt", "--check", str(first), str(second))
    assert status == 1 and err.count("not formatted") == 2
    status, out, err = run(capsys, "fmt", "--write", str(first), "tests/bad/unknown_op_sepp.arch", str(second))
    assert status == 2 and out == "" and "unknown op 'sepp'" in err
    assert first.read_text().startswith("model tiny\n") and second.read_text().startswith("model other\n")
    assert run(capsys, "fmt", "--check", str(first), str(second))[0] == 0
    status, out, _ = run(capsys, "fmt", str(first), str(second))
    assert status == 0 and out == first.read_text() + second.read_text()


# ---------------------------------------------------------------- usage errors

@pytest.mark.parametrize("argv, fragment", [
    (["frobnicate", "specs/best.arch"], "unknown command 'frobnicate'"),
    (["chek", "specs/best.arch"], "did you mean 'check'?"),
    (["rf", "specs/best.arch", "--frobnicate"], "--frobnicate"),
    (["rf", "specs/best.arch", "--format", "yaml"], "'yaml'"),
    (["--frobnicate"], "--frobnicate"),
    (["check"], "required"),
])
def test_usage_errors_exit_2_with_our_message(capsys, argv, fragment):
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert out == ""
    assert USAGE_ERROR.match(err), err
    assert fragment in err
    assert "Traceback" not in err and "usage:" not in err


def test_unknown_flag_points_at_the_commands_help(capsys):
    _, _, err = run(capsys, "rf", "specs/best.arch", "--frobnicate")
    assert "archdsl rf --help" in err


@pytest.mark.parametrize("command", [["rf"], ["rf", "--format", "markdown"], ["check"],
                                     ["export", "--to", "keras", "-o", "\u6a21.py"]])
def test_a_name_the_terminal_cannot_encode_is_escaped_not_a_traceback(tmp_path, command):
    spec = tmp_path / "\u6a21\u578b.arch"  # 模型.arch, printed on an ASCII-only terminal
    spec.write_text((ROOT / "specs/best.arch").read_text())
    argv = [command[0], spec.name, *command[1:]]
    done = subprocess.run([sys.executable, "-m", "archdsl", *argv], cwd=tmp_path, capture_output=True,
                          env={**os.environ, "PYTHONIOENCODING": "ascii"}, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    assert b"Traceback" not in done.stderr
    assert b"\\u" in done.stdout + done.stderr  # the name (markdown: its em dash) backslash-escaped


# ---------------------------------------------------------------- no TensorFlow for analysis

def test_analysis_modules_do_not_import_tensorflow():
    code = ("import archdsl.cli, archdsl.analysis, archdsl.render.tables, archdsl.language.resolve, archdsl.language.parser; import sys; "
            "assert 'tensorflow' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_rf_check_fmt_do_not_import_tensorflow():
    code = ("import sys, contextlib, io\n"
            "from archdsl.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    assert main(['rf', 'specs/best.arch', '--format', 'json']) == 0\n"
            "    assert main(['check', 'specs/base.arch']) == 0\n"
            "    assert main(['fmt', 'specs/base.arch']) == 0\n"
            "assert 'tensorflow' not in sys.modules, 'rf/check/fmt imported TensorFlow'\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


def test_train_turns_onednn_on_unless_the_user_chose(monkeypatch):
    """oneDNN measured 1.27x faster training here (docs/performance.md); TensorFlow leaves it off on
    CPUs without AVX-512, so `archdsl train` asks for it, before TensorFlow starts, unless told."""
    import archdsl.training.train

    seen = []
    monkeypatch.setattr(archdsl.training.train, "run_train", lambda args: seen.append(os.environ.get("TF_ENABLE_ONEDNN_OPTS")))
    monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    main(["train", "specs/best.arch"])
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "0")
    main(["train", "specs/best.arch"])
    assert seen == ["1", "0"]


# ---------------------------------------------------------------- train/eval flags refused before any work

@pytest.mark.parametrize("flags, fragment", [
    (["--seed", "-1"], "--seed -1: must be from 0 to 4,294,967,295"),
    (["--seed", str(2**32)], "--seed 4294967296"),
    (["--limit", "0"], "--limit 0: must be at least 1 image"),
    (["--test-limit", "-3"], "--test-limit -3"),
    (["--lr", "inf"], "--lr inf"),
    (["--peer-timeout", "0"], "--peer-timeout 0"),
])
def test_train_refuses_out_of_range_flags_before_writing_a_run(capsys, tmp_path, flags, fragment):
    """Keras takes seeds in [0, 2**32); an infinite lr trains to NaN; 0 is a timeout, not 'the default'.
    Each is refused with E612/E620 before the data is read or a run directory made."""
    status, out, err = run(capsys, "train", "specs/best.arch", "--data", str(tmp_path / "no-data"),
                           "--out", str(tmp_path / "runs"), *flags)
    assert status == 2, err
    assert re.search(r"error\[E6(12|20)\]", err) and fragment in err and "hint:" in err
    assert not (tmp_path / "runs").exists()


def test_eval_refuses_a_test_limit_of_zero(capsys, tmp_path):
    status, _, err = run(capsys, "eval", str(tmp_path / "model.keras"), "--test-limit", "0")
    assert status == 2 and "error[E612]: --test-limit 0" in err


# ---------------------------------------------------------------- what report and export say on the terminal

def _fake_run(folder: Path, spec: str) -> Path:
    """A run directory as `archdsl train` leaves it, of model `spec`, two epochs."""
    folder.mkdir(parents=True)
    (folder / "history.csv").write_text("epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
                                        "1,0.01,2.0,0.4,2.1,0.35,10.0\n2,0.009,1.5,0.5,1.6,0.45,10.0\n")
    (folder / "metrics.json").write_text(json.dumps({"spec": spec, "complete": True, "epochs_done": 2, "epochs": 2}))
    return folder


def test_report_of_a_run_of_another_spec_says_so_on_the_terminal(tmp_path, capsys):
    run_dir = _fake_run(tmp_path / "runs" / "base" / "t1", "base")
    status, out, err = run(capsys, "report", "specs/best.arch", str(run_dir), "-o", str(tmp_path / "r.md"))
    assert status == 0 and "wrote" in out
    warning = next(line for line in err.splitlines() if line.startswith("warning: the run "))
    assert str(run_dir) in warning and "'base'" in warning and "specs/best.arch" in warning and "'best'" in warning
    status, _, err = run(capsys, "report", "specs/best.arch", str(_fake_run(tmp_path / "own", "best")),
                         "-o", str(tmp_path / "own.md"))
    assert status == 0 and "warning: the run" not in err


@pytest.mark.parametrize("torch_installed", [False, True])
def test_export_to_pytorch_says_how_to_install_torch_when_it_is_missing(tmp_path, capsys, monkeypatch,
                                                                         torch_installed):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: (real(name, *a) if name != "torch" or torch_installed else None))
    status, out, err = run(capsys, "export", "specs/best.arch", "--to", "pytorch", "-o", str(tmp_path / "m.py"))
    assert status == 0 and "wrote" in out
    assert ("pip install 'archdsl[torch]'" in err) is not torch_installed
    status, _, err = run(capsys, "export", "specs/best.arch", "--to", "keras", "-o", str(tmp_path / "k.py"))
    assert status == 0 and "torch" not in err
