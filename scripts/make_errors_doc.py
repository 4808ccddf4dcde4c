#!/usr/bin/env python3
"""Write docs/errors.md: every error code of archdsl, what it means, a real example, and the fix.

    python scripts/make_errors_doc.py           # rewrite docs/errors.md
    python scripts/make_errors_doc.py --check   # exit 1 if docs/errors.md is not what this writes

The codes, their stages, meanings and fixes are archdsl/error_codes.py's (the registry the raise
sites are checked against). This script adds the examples, each produced by running the tool now —
- a spec error: the tests/bad/*.arch case with this code and the fewest messages (its golden
  .expected is checked by tests/test_errors.py), or a small spec given here, run through
  `archdsl check`;
- a command-line, data or run error: `archdsl ...` run in-process in a scratch folder that
  `setup` prepares (files, a damaged run directory, a patched disk), or an API call for the
  few that the command line reaches only after TensorFlow has started.
EXAMPLES below says how to produce them; a code no message can reach without a real training
run keeps a note in NOTES instead; a code in neither shows its tests/bad case, if it has one.

tests/test_errors_doc.py checks that every code in archdsl/ is in the registry and that the doc
is up to date; tests/test_error_codes.py checks the raise sites against the registry.
"""
from __future__ import annotations

import argparse
import contextlib
import errno
import io
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "errors.md"
BAD = ROOT / "tests" / "bad"
CODE = re.compile(r'"(E\d{3})"')
REGISTRY_MODULE = "archdsl/error_codes.py"  # lists every code; not a place that raises one


@dataclass
class Example:
    """How to produce a code's example. `argv` runs `archdsl ARGV` in a scratch folder after `setup(folder)`
    (and inside `patch()`, a context manager, if given); `call(folder)` runs an API call instead."""
    argv: list[str] | None = None
    spec: str | None = None                     # a spec text, checked as example.arch
    bad: str | None = None                      # a tests/bad case (default: chosen automatically)
    setup: Callable[[Path], None] | None = None
    patch: Callable[[], object] | None = None
    call: Callable[[Path], None] | None = None
    shown: str | None = None                    # the command line to show, if not `archdsl ARGV`


# ---------------------------------------------------------------- scratch folders for the examples

BEST = (ROOT / "specs" / "best.arch").read_text(encoding="utf-8")
TINY = "input 8x8x3\nclasses 2\nconv 3x3 4 same bn relu\ngap\ndense classes\nsoftmax\n"


SPACE = "choose w in [16, 32]\ninput 32x32x3\nsep 3x3 w same bn relu\ngap\n"

def _spec(folder: Path, name: str = "best.arch", text: str = BEST) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def _run_dir(folder: Path, state: str | None = '{"format": "archdsl-run/1"}') -> Path:
    """A run directory as `archdsl train` leaves it, without a model: runs/tiny/20260101-120000."""
    run = folder / "runs" / "tiny" / "20260101-120000"
    (run / "checkpoint").mkdir(parents=True)
    (run / "spec.arch").write_text(TINY)
    (run / "resolved.json").write_text("{}")
    if state is not None:
        (run / "checkpoint" / "state.json").write_text(state)
    return run


def _image_folder(folder: Path, bad_image: bool = False) -> None:
    from PIL import Image
    for split in ("train", "test"):
        for cls in ("cat", "dog"):
            d = folder / "pets" / split / cls
            d.mkdir(parents=True)
            for i in range(2):
                Image.new("RGB", (8, 8), (i * 50, 0, 0)).save(d / f"{i}.png")
    if bad_image:
        (folder / "pets" / "train" / "dog" / "1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")


def _truncated_tar(folder: Path) -> None:
    import tarfile
    _image_folder(folder)
    with tarfile.open(folder / "full.tar.gz", "w:gz") as tar:
        tar.add(folder / "pets", arcname="pets")
    data = (folder / "full.tar.gz").read_bytes()
    (folder / "pets.tar.gz").write_bytes(data[: len(data) // 2])


def _disk_full():
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    return _patches(("os.replace", full), ("os.link", full))


def _patches(*targets):
    stack = contextlib.ExitStack()
    for target, new in targets:
        stack.enter_context(mock.patch(target, new))
    return stack


def _held_lock(folder: Path) -> None:
    from archdsl import runs
    run = runs.RunDir(_run_dir(folder))
    with runs.RunLock(run):
        with runs.RunLock(run):
            pass


def _keras_name(folder: Path) -> None:
    from archdsl.fileio import save_keras_model
    save_keras_model(None, "model.h5")


def _keras_changed(folder: Path) -> None:
    """What `archdsl train --strategy ...` checks before patching Keras' fit, on a Keras release without
    a private name it replaces (patched in: Keras 3.99.0, whose trainer has no reduce_per_replica)."""
    import keras
    from keras.src.backend.tensorflow import trainer

    from archdsl.training.distribute import keras_fit_fixes
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with _patches(("keras.__version__", "3.99.0"), (f"{trainer.__name__}.reduce_per_replica", None)), \
            contextlib.redirect_stderr(io.StringIO()):  # its warning: Keras 3.99.0 was not checked
        with keras_fit_fixes(model, None):
            pass


HUGE = "model huge\ninput 64x64x3\nconv 3x3 100000 same\nconv 3x3 100000 same\ngap\n"


def _build_huge(folder: Path) -> None:
    """What `archdsl build huge.arch` checks before TensorFlow allocates (called, so a regression cannot allocate)."""
    import archdsl
    from archdsl.keras_backend.memory import check_build
    _spec(folder, "huge.arch", HUGE)
    with mock.patch("archdsl.keras_backend.memory.physical_memory", lambda: 16 * 2**30):
        check_build(archdsl.load("huge.arch"))


def _open_storage(url: str | None) -> Callable[[Path], None]:
    """The tuner's storage at `url` (None: the SQLite file study.db of the scratch folder), opened as `archdsl tune`
    opens it."""
    def call(folder: Path) -> None:
        from archdsl.training.tune_storage import open_storage
        open_storage(url, folder, timeout=5)
    return call


def _deep_braces() -> str:
    return "input 8x8x1\n" + "residual {\n" * 70 + "  conv 3x3 1 same\n" + "}\n" * 70


# ---------------------------------------------------------------- the examples (the meanings and fixes: the registry)

X = Example
EXAMPLES: dict[str, list[Example]] = {
    "E101": [X(bad="missing"), X(bad="directory")],
    "E102": [X(bad="binary"), X(bad="invalid_utf8")],
    "E106": [X(spec=_deep_braces())],
    "E210": [X(bad="unknown_option_rleu"), X(bad="padding_smae"),
             X(spec="input 8x8x1\nconv 3x3 8 same valid\n")],
    "E214": [X(bad="filters_negative"), X(bad="dw_too_many_channels")],
    "E217": [X(spec="input 8x8x1\nconv 3x3 8 same\nassert params <= 1e400\n")],
    "E236": [X(call=_build_huge, shown="archdsl build huge.arch    # on a machine with 16 GiB of memory")],
    "E285": [X(argv=["rf", "space.arch"], setup=lambda d: _spec(d, "space.arch", SPACE))],
    "E301": [X(bad="assert_params_fail"), X(bad="assert_ops_fail")],
    "E400": [
        X(argv=["train", "tiny.arch", "--data", "nowhere", "--out", "runs"],
          setup=lambda d: _spec(d, "tiny.arch", TINY)),
        X(argv=["train", "tiny.arch", "--data", "pets", "--out", "runs"],
          setup=lambda d: (_spec(d, "tiny.arch", TINY), _image_folder(d, bad_image=True))),
        X(argv=["train", "tiny.arch", "--data", "pets.tar.gz", "--data-dir", "cache", "--out", "runs"],
          setup=lambda d: (_spec(d, "tiny.arch", TINY), _truncated_tar(d))),
        X(argv=["train", "best.arch", "--data", "pets", "--out", "runs"],
          setup=lambda d: (_spec(d), _image_folder(d))),
    ],
    "E501": [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.py"], setup=_spec, patch=_disk_full,
               shown="archdsl export best.arch --to keras -o model.py    # on a full disk")],
    "E510": [X(argv=["train", "best.arch", "--out", "notes.txt"],
               setup=lambda d: (_spec(d), (d / "notes.txt").write_text("a file\n")))],
    "E520": [X(argv=["train", "--resume", "runs/best/nope"])],
    "E521": [X(argv=["train", "--resume", "runs/tiny/20260101-120000"],
               setup=lambda d: _run_dir(d, state=None))],
    "E523": [X(argv=["train", "--resume", "runs/tiny/20260101-120000"],
               setup=lambda d: _run_dir(d, state='{"format": "archdsl-run/1", "epoch": 3, "hist'))],
    "E524": [X(call=_held_lock, shown="archdsl train --resume runs/tiny/20260101-120000    "
                                      "# while another process trains it")],
    "E530": [X(argv=["eval", "runs/tiny/20260101-120000"], setup=_run_dir)],
    "E540": [X(argv=["report", "best.arch", "runs/best/nope", "-o", "report.html"], setup=_spec)],
    "E541": [X(argv=["report", "best.arch", "runs", "-o", "report.html"],
               setup=lambda d: (_spec(d), (d / "runs").mkdir()))],
    "E542": [X(argv=["report", "best.arch", "runs/tiny/20260101-120000", "-o", "report.html"],
               setup=lambda d: (_spec(d), (_run_dir(d) / "history.csv").write_text(
                   'epoch,lr\n1,"' + "x" * 200_000 + "\n")))],
    "E560": [X(call=_keras_changed, shown="archdsl train best.arch --strategy mirrored    # on 2 GPUs, with a Keras "
                                          "release whose trainer has no reduce_per_replica")],
    "E601": [X(argv=["chek", "best.arch"]), X(argv=["rf", "best.arch", "-v"])],
    "E602": [X(argv=["export", "best.arch", "--to", "keras", "-o", "out.py"],
               setup=lambda d: (_spec(d), (d / "out.py").mkdir()))],
    "E603": [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.py"],
               setup=lambda d: (_spec(d), (d / "model.py").write_text("")))],
    "E604": [X(argv=["export", "best.arch", "--to", "keras", "-o", "out/model.py"], setup=_spec)],
    "E605": [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.py"], setup=_spec,
               patch=lambda: mock.patch("os.access", lambda *a, **k: False),
               shown="archdsl export best.arch --to keras -o model.py    # in a read-only folder")],
    "E606": [X(call=_keras_name, shown="archdsl build best.arch -o model.h5")],
    "E610": [X(argv=["train"])],
    "E612": [X(argv=["train", "best.arch", "--epochs", "0"], setup=_spec)],
    "E613": [X(argv=["eval", "runs/best/nope.keras"])],
    "E614": [X(argv=["train", "best.arch", "--recipe", "other.arch"],
               setup=lambda d: (_spec(d), _spec(d, "other.arch", TINY)))],
    "E615": [X(argv=["train", "tiny.arch", "--data", "pets", "--data-dir", "cache", "--val-split", "3"],
               setup=lambda d: (_spec(d, "tiny.arch", TINY), _image_folder(d)))],
    "E620": [X(argv=["train", "best.arch", "--strategy", "mirrord"], setup=_spec)],
    "E621": [X(argv=["train", "best.arch", "--strategy", "multiworker"], setup=_spec,
               patch=lambda: mock.patch.dict(os.environ, {"TF_CONFIG": '{"cluster": 3'}),
               shown="TF_CONFIG='{\"cluster\": 3' archdsl train best.arch --strategy multiworker")],
    "E630": [X(argv=["export", "best.arch", "--to", "tf", "-o", "model.py"], setup=_spec)],
    "E631": [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.txt"], setup=_spec)],
    "E640": [X(argv=["report", "best.arch", "-o", "report.pdf"], setup=_spec)],
    "E641": [X(argv=["report", "best.arch", "-o", "report.md"],
               setup=lambda d: (_spec(d), (d / "report_files").write_text("")))],
    "E650": [X(argv=["draw", "best.arch", "-o", "net.jpg"], setup=_spec)],
    "E651": [X(argv=["draw", "best.arch", "-o", "net.svg"], setup=_spec,
               patch=lambda: mock.patch.dict(os.environ, {"PATH": ""}),
               shown="archdsl draw best.arch -o net.svg    # without graphviz")],
    "E660": [X(argv=["erf", "best.arch", "--layers", "12"], setup=_spec)],
    "E662": [X(argv=["erf", "best.arch", "--images", "0"], setup=_spec)],
    "E663": [X(argv=["erf", "best.arch", "-o", "erf.jpg"], setup=_spec)],
    "E671": [X(argv=["export", "best.arch", "--to", "onnx", "-o", "best.tflite"], setup=_spec)],
    "E672": [X(argv=["export", "best.arch", "--to", "tflite", "--int8", "-o", "best.tflite"], setup=_spec)],
    "E680": [X(call=_open_storage("postgres://tuner:secret@db.example.org/archdsl"),
               shown="archdsl tune space.arch --storage postgres://tuner:secret@db.example.org/archdsl")],
    "E682": [X(call=_open_storage("postgresql://tuner:secret@127.0.0.1:1/archdsl"),
               shown="archdsl tune space.arch --storage postgresql://tuner:secret@127.0.0.1:1/archdsl    "
                     "# no server at port 1")],
    "E684": [X(call=_open_storage(None), setup=lambda d: (d / "study.db").write_text("notes, not a database\n" * 99),
               shown="archdsl tune space.arch    # the tune folder's study.db is another file")],
    "E685": [X(argv=["tune", "space.arch", "--trials", "0"], setup=lambda d: _spec(d, "space.arch", SPACE))],
    "E686": [X(argv=["tune", "space.arch"],
               setup=lambda d: (_spec(d, "space.arch", SPACE), (d / "runs/tune/space").mkdir(parents=True),
                                (d / "runs/tune/space/notes.txt").write_text("mine\n")))],
    "E687": [X(argv=["tune", "space.arch", "--resume"], setup=lambda d: _spec(d, "space.arch", SPACE))],
    "E689": [X(argv=["tune", "space.arch", "--report", "tune.pdf"], setup=lambda d: _spec(d, "space.arch", SPACE))],
}

# a code no message can reach without a real training run (or a guard no input reaches): a note instead
NOTES: dict[str, str] = {
    "E661": "Needs a saved model of another spec: `error[E661]: best.keras is not a model of base.arch: it has no "
            "layer l01_sep32_relu` (tests/test_erf.py makes one with `archdsl build`).",
    "E522": "`--resume` reports the damaged file itself (E523) whenever there is one; E522 is left for a "
            "checkpoint folder emptied while archdsl reads it.",
    "E525": "Needs a checkpoint written by another model: "
            "`error[E525]: checkpoint runs/.../checkpoint/epoch-0003.keras does not fit the model of "
            "runs/.../resolved.json`.",
    "E526": "Needs a checkpoint of a distributed run: `error[E526]: the run trained on 2 replicas, this "
            "process has 1: the global batch would change`.",
    "E531": "Needs TensorFlow to try the file: `error[E531]: cannot load model.keras: ...` followed by "
            "Keras' reason.",
    "E532": "Needs TensorFlow to load the model: `error[E532]: the model's output is 32x32x3, not one "
            "score per class`.",
    "E543": "Not reachable with a working graphviz.",
    "E550": "Needs a cluster (tests/test_distributed.py starts one on 127.0.0.1): `error[E550]: worker 0 "
            "(host1:12345) could not reach worker 1 (host2:12345) within 300 s`. See "
            "[distributed training](distributed.md).",
    "E551": "Needs a cluster: `error[E551]: worker 0 lost the cluster during training (UnavailableError: "
            "...)`. See [distributed training](distributed.md).",
    "E611": "Shown when resuming, e.g. `archdsl train --resume runs/best/20261125-101500 --epochs 80` "
            "on a run started with 50 epochs: a resumed run keeps its schedule, so it can end "
            "exactly as an uninterrupted one would.",
    "E632": "Every op and activation of the language has an export today; the check guards new ones.",
    "E670": "Needs TensorFlow and the converter: `error[E670]: cannot export grouped.arch to onnx: layer l01_conv8: "
            "no ONNX op for TensorFlow's StatefulPartitionedCall (Keras runs a grouped conv as a compiled "
            "function)` (tests/test_deploy.py).",
    "E673": "Needs the LiteRT interpreter or ONNX Runtime to try the file: `error[E673]: cannot load model.tflite: "
            "not a TFLite model (...)` followed by the runtime's reason (tests/test_deploy.py).",
    "E674": "Shown where the `deploy` extra is not installed: `error[E674]: onnx needs tf2onnx, onnx, onnxruntime, "
            "which are not installed`.",
    "E681": "Shown where a package is missing, e.g. `--storage mysql+pymysql://...` without PyMySQL: "
            "`error[E681]: --storage mysql+pymysql://tuner:***@db/archdsl: the mysql driver pymysql is not installed "
            "(No module named 'pymysql')`, hint `pip install pymysql`.",
    "E683": "Needs a database server (tests/test_tune_storage.py starts one): `error[E683]: the postgresql server of "
            "--storage postgresql+psycopg2://tuner:***@127.0.0.1:5433/archdsl refuses the connection: connection to "
            "server at \"127.0.0.1\", port 5433 failed: FATAL: password authentication failed for user \"tuner\"`. "
            "See [tuning on several machines](tuning.md#tuning-on-several-machines).",
    "E652": "Not expected: archdsl escapes every label; the message carries graphviz's own error.",
    "E688": "Needs a study with trials: `archdsl tune space.arch --resume --epochs 3` on a study started with "
            "`--epochs 2` says `error[E688]: --epochs 3 differs from the study's 2: every trial of a study trains "
            "with the same settings` (tests/test_tune.py). See [tuning](tuning.md).",
}


# ---------------------------------------------------------------- producing the examples

def source_codes() -> dict[str, list[str]]:
    """Every code written in archdsl/ -> the modules that write it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "archdsl").rglob("*.py")):
        for code in CODE.findall(path.read_text(encoding="utf-8")):
            module = path.relative_to(ROOT).as_posix()
            if module == REGISTRY_MODULE:
                continue
            if module not in found.setdefault(code, []):
                found[code].append(module)
    return found


def bad_cases() -> dict[str, list[str]]:
    """code -> tests/bad cases whose output has it, fewest messages first."""
    cases: dict[str, list[tuple[int, str]]] = {}
    for expected in sorted(BAD.glob("*.expected")):
        text = expected.read_text(encoding="utf-8")
        codes = re.findall(r"error\[(E\d{3})\]", text)
        for code in set(codes):
            cases.setdefault(code, []).append((len(codes), expected.stem))
    return {code: [name for _, name in sorted(found)] for code, found in cases.items()}


def _run_cli(argv: list[str], cwd: Path) -> tuple[int, str]:
    from archdsl.cli import main
    err = io.StringIO()
    old = os.getcwd()
    os.chdir(cwd)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            status = main(argv)
    finally:
        os.chdir(old)
    return status, err.getvalue()


def _render(example: Example) -> tuple[str, str]:
    """(command shown, its output) of one example."""
    from archdsl.errors import ArchError

    if example.bad:
        expected = (BAD / f"{example.bad}.expected").read_text(encoding="utf-8")
        status, output = expected.split("\n", 1)
        return f"archdsl check tests/bad/{example.bad}.arch", output.rstrip("\n") + f"\n(exit {status.split()[1]})"
    with tempfile.TemporaryDirectory(prefix="archdsl-errors-") as tmp:
        folder = Path(tmp).resolve()
        if example.spec is not None:
            (folder / "example.arch").write_text(example.spec, encoding="utf-8")
            argv, shown = ["check", "example.arch"], "archdsl check example.arch"
        else:
            argv = example.argv
            shown = example.shown or "archdsl " + " ".join(argv or [])
        if example.setup:
            old = os.getcwd()
            os.chdir(folder)
            try:
                example.setup(folder)
            finally:
                os.chdir(old)
        with example.patch() if example.patch else contextlib.nullcontext():
            if example.call:
                old = os.getcwd()
                os.chdir(folder)
                try:
                    example.call(folder)
                    raise AssertionError(f"{shown}: no error")
                except ArchError as exc:
                    status, output = exc.exit_status, exc.render() + "\n"
                finally:
                    os.chdir(old)
            else:
                status, output = _run_cli(argv, folder)
        output = output.replace(str(folder) + os.sep, "").replace(str(folder), ".")
    return shown, output.rstrip("\n") + f"\n(exit {status})"


def render() -> str:
    from archdsl.training import progress
    # the examples show the error, not the rates and cache names of loading the data
    with mock.patch.object(progress, "SHOW", False):
        return _render_doc()


def _render_doc() -> str:
    from archdsl.error_codes import CODES, STAGES

    used = source_codes()
    cases = bad_cases()
    missing = sorted(set(used) - set(CODES))
    if missing:
        raise SystemExit(f"codes without an entry in {REGISTRY_MODULE}: {', '.join(missing)}")
    out = ["# Error codes", "",
           "<!-- generated by scripts/make_errors_doc.py from archdsl/error_codes.py and real runs of the tool; "
           "do not edit -->",
           "",
           "Every error archdsl reports has one shape: where (`file:line:col`, for a spec), the code and what is "
           "wrong, the offending line with a caret under the problem, and a hint that says how to fix it. "
           "All errors of a spec are reported together (the first 50 printed, then their count). "
           "Exit status: 0 ok, 1 an assert failed or a run failed, 2 the spec, the data or the command line is wrong.",
           "",
           "| codes | stage | |", "|---|---|---|"]
    for stage in STAGES:
        out.append(f"| {stage.prefix}xx | {stage.title} | `{stage.error_class}`: {stage.about} |")
    out.append("")
    for stage in STAGES:
        codes = [c for c in sorted(CODES) if c.startswith(stage.prefix)]
        out += [f"## {stage.prefix}xx: {stage.title}", ""]
        for code in codes:
            entry = CODES[code]
            modules = ", ".join(f"`{m}`" for m in used.get(code, [])) or "not used"
            out += [f"### {code}", "", entry.meaning, "", f"Raised in: {modules}."]
            examples = EXAMPLES.get(code, [])
            if not examples and code in cases:
                examples = [Example(bad=cases[code][0])]
            for example in examples:
                shown, output = _render(example)
                out += ["", "```console", f"$ {shown}", output, "```"]
            if code in NOTES:
                out += ["", NOTES[code]]
            if entry.fix != "—":
                out += ["", f"**Fix:** {entry.fix}"]
            out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/errors.md is out of date")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
        if current != text:
            print("docs/errors.md is out of date: run python scripts/make_errors_doc.py", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(text, encoding="utf-8")
    print(f"wrote {DOC.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
