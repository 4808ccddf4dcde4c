#!/usr/bin/env python3
"""Write docs/errors.md: every error code of archdsl, what it means, a real example, and the fix.

    python scripts/make_errors_doc.py           # rewrite docs/errors.md
    python scripts/make_errors_doc.py --check   # exit 1 if docs/errors.md is not what this writes

The meanings and fixes are written by hand in CODES below, one entry a code. The examples are
not: each is produced by running the tool now —
- a spec error: the tests/bad/*.arch case with this code and the fewest messages (its golden
  .expected is checked by tests/test_errors.py), or a small spec given here, run through
  `archdsl check`;
- a command-line, data or run error: `archdsl ...` run in-process in a scratch folder that
  `setup` prepares (files, a damaged run directory, a patched disk), or an API call for the
  few that the command line reaches only after TensorFlow has started.
A code no message can reach without a real training run keeps a note instead of an example.

tests/test_errors_doc.py checks that every code in archdsl/ has an entry here and that the doc
is up to date.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from unittest import mock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "errors.md"
BAD = ROOT / "tests" / "bad"
CODE = re.compile(r'"(E\d{3})"')

STAGES = [
    ("E0", "The base class", "`ArchError`: every error archdsl reports derives from it."),
    ("E1", "Syntax", "`SpecSyntaxError`: the file cannot be read, or its text does not follow the grammar. Exit 2."),
    ("E2", "Spec semantics", "`SpecSemanticError`: grammatical, but meaningless (unknown op, bad value, shape "
                             "below 1, ...). All of a file's errors are reported together. Exit 2."),
    ("E3", "Asserts", "`ConstraintError`: an `assert` line does not hold. Exit 1."),
    ("E4", "Data", "`DataError`: a dataset is missing, malformed or does not fit the spec. Exit 2."),
    ("E5", "Runs and training", "`RunError`: a run cannot start, continue, be read or be written. Exit 1."),
    ("E6", "Command line", "`UsageError`: the command line is wrong (or, for E651/E652 of `draw`, the graphviz "
                           "program is). Exit 2, except where a RunError carries the code."),
]


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


@dataclass
class Entry:
    meaning: str
    fix: str
    examples: list[Example] = field(default_factory=list)
    note: str | None = None                     # when there is no runnable example


# ---------------------------------------------------------------- scratch folders for the examples

BEST = (ROOT / "specs" / "best.arch").read_text(encoding="utf-8")
TINY = "input 8x8x3\nclasses 2\nconv 3x3 4 same bn relu\ngap\ndense classes\nsoftmax\n"


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


def _deep_braces() -> str:
    return "input 8x8x1\n" + "residual {\n" * 70 + "  conv 3x3 1 same\n" + "}\n" * 70


# ---------------------------------------------------------------- the table

X = Example
CODES: dict[str, Entry] = {
    "E000": Entry("The code of the base class `ArchError`; no message uses it.", "—"),
    "E100": Entry("The default code of a syntax error; every message today has a more precise code.", "—"),
    "E101": Entry("The spec file cannot be read: it does not exist, or it is a directory.",
                  "Check the path; name a `.arch` file.", [X(bad="missing"), X(bad="directory")]),
    "E102": Entry("The file is not a spec: it is binary, not UTF-8 text, or larger than a spec can be.",
                  "Save the spec as plain UTF-8 text; check that you named the right file.",
                  [X(bad="binary"), X(bad="invalid_utf8")]),
    "E103": Entry("A character the language does not use (`;`, `/`, `@`, ...).",
                  "Remove it; comments start with `#`, statements end at the end of the line."),
    "E104": Entry("A `{` is never closed: the file ends inside a block, residual, parallel or train section.",
                  "Close it with a `}` on a line of its own."),
    "E105": Entry("A token where the grammar does not allow it (a misplaced `}`, `(`, `*`, a layer outside "
                  "a `branch`, ...).", "Follow the hint: it lists what may come there."),
    "E106": Entry("Braces nest deeper than the parser allows.", "Flatten the structure with named blocks.",
                  [X(spec=_deep_braces())]),
    "E200": Entry("The default code of a semantic error; every message today has a more precise code.", "—"),
    "E201": Entry("The spec is empty, has only comments, or has no layers.",
                  "Write an `input` line and at least one layer."),
    "E202": Entry("A header (`model`, `input`, `classes`) is declared twice.", "Keep one of them."),
    "E203": Entry("The `input` shape is not HxWxC with each side at least 1.", "Write e.g. `input 32x32x3`."),
    "E204": Entry("`classes` is not a whole number of at least 1.", "Write e.g. `classes 10`."),
    "E205": Entry("The spec has no `input` line.", "Declare the input shape, e.g. `input 32x32x3`."),
    "E206": Entry("An unknown op (or block) name.", "Use an op of the language (see the hint's did-you-mean) "
                  "or define the block."),
    "E207": Entry("A second `train { }` section.", "Merge it into the first."),
    "E208": Entry("The model's last layer does not produce `classes` values.",
                  "Write `classes` as the last layer's filters or units."),
    "E209": Entry("`classes` is used as a number but not declared.", "Add a `classes N` line."),
    "E210": Entry("An option the op does not take, an unknown option or padding, or one given twice (two paddings, "
                  "strides, dilations, `dm`s or bias options: the last does not win).",
                  "Use the options the hint lists for that op; keep one of two.",
                  [X(bad="unknown_option_rleu"), X(bad="padding_smae"),
                   X(spec="input 8x8x1\nconv 3x3 8 same valid\n")]),
    "E211": Entry("An option that takes a value (`stride`, `dilation`, `dm`, `drop`) has none.",
                  "Give the value: `stride 2`, `drop .05`."),
    "E212": Entry("An op lacks a required argument: a kernel, filters/units, or a rate.",
                  "Write it, e.g. `sep 3x3 64`, `dense 10`, `dropout .1`."),
    "E213": Entry("A count (filters, units, pool size, depth multiplier) is not a whole number.",
                  "Write a whole number."),
    "E214": Entry("A number (filters, units, kernel side, stride, dilation) is out of range, or a `dw` layer or a "
                  "concat would output more than 100,000 channels.", "Use a value from 1 to 100,000.",
                  [X(bad="filters_negative"), X(bad="dw_too_many_channels")]),
    "E215": Entry("A dropout rate outside [0, 1).", "Write e.g. `drop .05`."),
    "E216": Entry("A kernel/stride/dilation size without exactly two sides.", "Write HxW, e.g. `3x3` or `3x1`."),
    "E217": Entry("A numeral beyond the range of a float (`1e400`), wherever it stands: a layer, an `assert`, the "
                  "train section, a repeat count, a block argument.", "Write a number below about 1.8e308.",
                  [X(spec="input 8x8x1\nconv 3x3 8 same\nassert params <= 1e400\n")]),
    "E218": Entry("An explicit padding that is not 1, 2 or 4 whole numbers from 0 (`pad 1`, `pad 1,2`, `pad 0,1,0,1`), "
                  "or a grouped convolution whose input channels or filters do not divide into its groups.",
                  "Write `pad N`, `pad H,W` or `pad T,B,L,R`; for `groups G`, make G divide both counts (the hint "
                  "names the largest that does)."),
    "E220": Entry("A block name is defined twice, or is a word of the language in any case (an op, an option such "
                  "as `same` or `s2`, a keyword, a merge).", "Rename the block."),
    "E221": Entry("A block body holds a line that is not a layer (`input`, `assert`, ...).",
                  "Move that line out of the block."),
    "E222": Entry("A block parameter is named after a word of the language in any case (an op, an option such as "
                  "`same`, `stride`, `dm` or `s2`, a keyword, a merge), or two parameters of a block have one name.",
                  "Rename the parameter, e.g. `c` or `width`."),
    "E223": Entry("A repeat count is not a whole number from 1 to 1000.", "Use a count from 1 to 1000."),
    "E224": Entry("An op is called with `(arguments)` like a block.", "Write its options after it: `sep 3x3 64`."),
    "E225": Entry("A block uses itself (directly or through others), or blocks nest too deep.",
                  "Remove the cycle; flatten the nesting."),
    "E226": Entry("A block use has options after it (`stage(64) same`).", "Pass values as arguments: `stage(...)`."),
    "E227": Entry("A block use's arguments do not fit its parameters (too many, unknown, twice, missing).",
                  "Match the block's parameter list (the hint shows it)."),
    "E228": Entry("Repeats and blocks expand to more than 10,000 layers or 100,000 statements.",
                  "Lower the repeat counts."),
    "E230": Entry("A windowed op (conv, pool, gap) after the feature map became a vector.",
                  "Put `gap`/`flatten` after the last conv or pool layer."),
    "E231": Entry("A layer with both a stride and a dilation above 1 (Keras supports one or the other).",
                  "Split it into two layers."),
    "E232": Entry("A `valid` window larger than its input: the output would be below 1x1.",
                  "Use `same` padding, a smaller kernel, or downsample less before it."),
    "E233": Entry("`dense` on a feature map.", "Put `gap` or `flatten` before it."),
    "E234": Entry("`whiten` on a conv that does not read the model input: its kernel is computed from the "
                  "images' patches.", "Whiten the first conv, or drop `whiten`."),
    "E235": Entry("`whiten` with an odd number of filters, or more than two per eigenvector of the patches.",
                  "Use an even number of filters up to 2 x kernel area x input channels (24 for 2x2 on RGB)."),
    "E240": Entry("`assert X in [...]` with a metric other than `ops`.", "Write `assert ops in [...]`."),
    "E241": Entry("An unknown op in an `assert ops` list.", "Use op names (see the did-you-mean)."),
    "E242": Entry("An unknown metric in an `assert`.", "Use one of the metrics the hint lists."),
    "E243": Entry("An `assert` compares with something that is not a number.", "Write e.g. `assert params <= 80k`."),
    "E250": Entry("A train setting is given twice.", "Keep one of them."),
    "E251": Entry("A train setting's value is out of its range (e.g. `batch 0`, `lr -1`).",
                  "Use a value in the range the message gives."),
    "E252": Entry("An unknown train setting, or a value of the wrong form (`epochs 2.5`, `augment flipp`).",
                  "See the settings table in docs/language.md."),
    "E260": Entry("An unknown merge after `residual`/`parallel`.", "Merge with `add` or `concat`."),
    "E261": Entry("A residual block with an empty body.", "Put layers between the braces."),
    "E262": Entry("A parallel block with fewer than two branches.", "Add `branch { }` sections (an empty one is the "
                  "identity)."),
    "E263": Entry("The paths of a residual or parallel block end with shapes the merge cannot join "
                  "(`add`: equal shapes; `concat`: equal spatial sizes).",
                  "Give the shortcut a projection (the hint writes it), or make the branches downsample alike."),
    "E264": Entry("The merged paths step through the image differently (unequal jumps): their units would not "
                  "line up.", "Downsample every path by the same strides."),
    "E300": Entry("The default code of a failed constraint; every message today is E301.", "—"),
    "E301": Entry("An `assert` does not hold; the message says the actual value.",
                  "Change the model, or the limit.",
                  [X(bad="assert_params_fail"), X(bad="assert_ops_fail")]),
    "E400": Entry("A dataset problem: the data is missing, not laid out as train/CLASS/image files, holds a "
                  "damaged image, is a truncated archive, or does not fit the spec. Every data error has this code; "
                  "the message names the file or folder.",
                  "Follow the hint; a damaged file must be replaced or deleted.", [
                      X(argv=["train", "tiny.arch", "--data", "nowhere", "--out", "runs"],
                        setup=lambda d: _spec(d, "tiny.arch", TINY)),
                      X(argv=["train", "tiny.arch", "--data", "pets", "--out", "runs"],
                        setup=lambda d: (_spec(d, "tiny.arch", TINY), _image_folder(d, bad_image=True))),
                      X(argv=["train", "tiny.arch", "--data", "pets.tar.gz", "--data-dir", "cache", "--out", "runs"],
                        setup=lambda d: (_spec(d, "tiny.arch", TINY), _truncated_tar(d))),
                      X(argv=["train", "best.arch", "--data", "pets", "--out", "runs"],
                        setup=lambda d: (_spec(d), _image_folder(d))),
                  ]),
    "E500": Entry("The default code of a run error; every message today has a more precise code.", "—"),
    "E501": Entry("A file cannot be written (disk full, permissions, the folder is a file). Writes are atomic: "
                  "the previous version of the file, if any, is intact.",
                  "Free disk space or fix the permissions, then run again (`train --resume` continues a run).",
                  [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.py"], setup=_spec, patch=_disk_full,
                     shown="archdsl export best.arch --to keras -o model.py    # on a full disk")]),
    "E510": Entry("`archdsl train` cannot create a run directory under `--out`.", "Choose a writable folder with "
                  "`--out`.", [X(argv=["train", "best.arch", "--out", "notes.txt"],
                                 setup=lambda d: (_spec(d), (d / "notes.txt").write_text("a file\n")))]),
    "E520": Entry("`--resume` (or `report`) names a run directory that does not exist or is a file.",
                  "Give a folder made by `archdsl train`.", [X(argv=["train", "--resume", "runs/best/nope"])]),
    "E521": Entry("The folder is not an (intact) run directory: no checkpoint state, spec or resolved IR.",
                  "Give a folder made by `archdsl train`.",
                  [X(argv=["train", "--resume", "runs/tiny/20260101-120000"],
                     setup=lambda d: _run_dir(d, state=None))]),
    "E522": Entry("A run has no usable checkpoint at all.", "Start a new run.",
                  note="`--resume` reports the damaged file itself (E523) whenever there is one; E522 is left for a "
                       "checkpoint folder emptied while archdsl reads it."),
    "E523": Entry("A checkpoint file of the run is damaged: state.json or epoch-N.json does not parse, or the model "
                  "file it names is missing or fails its checksum. `--resume` falls back to the newest intact "
                  "epoch checkpoint (with a warning) and reports this error only when none is left.",
                  "Resume from an older checkpoint if one is left; otherwise start a new run.",
                  [X(argv=["train", "--resume", "runs/tiny/20260101-120000"],
                     setup=lambda d: _run_dir(d, state='{"format": "archdsl-run/1", "epoch": 3, "hist'))]),
    "E524": Entry("Another archdsl process is writing the run (it holds the run's lock).",
                  "Wait for it to finish, or stop it first.",
                  [X(call=_held_lock, shown="archdsl train --resume runs/tiny/20260101-120000    "
                                            "# while another process trains it")]),
    "E525": Entry("A checkpoint's weights or optimizer state do not fit the run's model.",
                  "Start a new run.",
                  note="Needs a checkpoint written by another model: "
                       "`error[E525]: checkpoint runs/.../checkpoint/epoch-0003.keras does not fit the run's model`."),
    "E526": Entry("A run resumed with another number of replicas (devices or workers) than it trained on: the "
                  "global batch, and so the run, would change.", "Resume on as many replicas as the run had.",
                  note="Needs a checkpoint of a distributed run: `error[E526]: the run trained on 2 replicas, this "
                       "process has 1: the global batch would change`."),
    "E530": Entry("`archdsl eval` of a run that has no best.keras yet (no epoch has finished).",
                  "Train it for an epoch first, or give a .keras file.",
                  [X(argv=["eval", "runs/tiny/20260101-120000"], setup=_run_dir)]),
    "E531": Entry("`archdsl eval` cannot load the .keras file (damaged, or not a Keras model).",
                  "Give a model file written by `archdsl build` or `train`.",
                  note="Needs TensorFlow to try the file: `error[E531]: cannot load model.keras: ...` followed by "
                       "Keras' reason."),
    "E532": Entry("`archdsl eval` of a model whose output is not one score per class (no `gap`/`flatten` "
                  "before its head).", "Evaluate a classifier: a spec that ends with e.g. `gap` and `softmax`.",
                  note="Needs TensorFlow to load the model: `error[E532]: the model's output is 32x32x3, not one "
                       "score per class`."),
    "E540": Entry("`archdsl report` names a run directory that does not exist, is a file, or is empty (\"\").",
                  "Give a folder made by `archdsl train`.",
                  [X(argv=["report", "best.arch", "runs/best/nope", "-o", "report.html"], setup=_spec)]),
    "E541": Entry("`archdsl report`: the run directory has no history.csv (not a run, or no epoch has finished).",
                  "Wait for the first epoch, or give another run.",
                  [X(argv=["report", "best.arch", "runs", "-o", "report.html"],
                     setup=lambda d: (_spec(d), (d / "runs").mkdir()))]),
    "E542": Entry("`archdsl report`: the run's history.csv cannot be read.",
                  "Restore the file (a resumed run rewrites it after its next epoch).",
                  [X(argv=["report", "best.arch", "runs/tiny/20260101-120000", "-o", "report.html"],
                     setup=lambda d: (_spec(d), (_run_dir(d) / "history.csv").write_text(
                         'epoch,lr\n1,"' + "x" * 200_000 + "\n")))]),
    "E543": Entry("The diagram graphviz drew is not an SVG picture (an internal check of `report`).",
                  "Report the problem; `archdsl draw --format dot` shows the diagram's source.",
                  note="Not reachable with a working graphviz."),
    "E550": Entry("`archdsl train --strategy multiworker`: a worker cannot join its cluster: a peer of TF_CONFIG "
                  "does not answer within `--peer-timeout`, the worker's port is taken, or the workers were given "
                  "different clusters.",
                  "Start every worker of TF_CONFIG with the same cluster and its own task index; check the ports; "
                  "give a slow-starting cluster a larger `--peer-timeout`.",
                  note="Needs a cluster (tests/test_distributed.py starts one on 127.0.0.1): `error[E550]: worker 0 "
                       "(host1:12345) could not reach worker 1 (host2:12345) within 300 s`. See "
                       "[distributed training](distributed.md)."),
    "E551": Entry("`archdsl train --strategy multiworker`: a worker lost its cluster during training (a peer "
                  "died or the network broke). The run keeps the checkpoint of the last complete epoch.",
                  "Restart every worker with `archdsl train --resume RUN_DIR --strategy multiworker`.",
                  note="Needs a cluster: `error[E551]: worker 0 lost the cluster during training (UnavailableError: "
                       "...)`. See [distributed training](distributed.md)."),
    "E600": Entry("The default code of a command-line error; every message today has a more precise code.", "—"),
    "E601": Entry("The command line does not parse: unknown command, unknown or missing argument.",
                  "See `archdsl COMMAND --help`.", [X(argv=["chek", "best.arch"]), X(argv=["rf", "best.arch", "-v"])]),
    "E602": Entry("The output path is a directory.", "Give a file name.",
                  [X(argv=["export", "best.arch", "--to", "keras", "-o", "out.py"],
                     setup=lambda d: (_spec(d), (d / "out.py").mkdir()))]),
    "E603": Entry("The output file exists; archdsl never overwrites.", "Choose another name, or remove the file.",
                  [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.py"],
                     setup=lambda d: (_spec(d), (d / "model.py").write_text("")))]),
    "E604": Entry("The output's folder does not exist.", "Create it (`mkdir -p`).",
                  [X(argv=["export", "best.arch", "--to", "keras", "-o", "out/model.py"], setup=_spec)]),
    "E605": Entry("The output's folder is not writable.", "Choose another output path.",
                  [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.py"], setup=_spec,
                     patch=lambda: mock.patch("os.access", lambda *a, **k: False),
                     shown="archdsl export best.arch --to keras -o model.py    # in a read-only folder")]),
    "E606": Entry("`archdsl build -o` names a file that does not end in .keras.", "Write e.g. `-o model.keras`.",
                  [X(call=_keras_name, shown="archdsl build best.arch -o model.h5")]),
    "E610": Entry("`archdsl train`: no spec file (and no `--resume`).", "Give the spec.", [X(argv=["train"])]),
    "E611": Entry("`archdsl train --resume`: a flag (`--epochs`, `--batch-size`, `--lr`, `--data`) differs from the "
                  "run's own setting.", "Leave the flag out, or start a new run.",
                  note="Shown when resuming, e.g. `archdsl train --resume runs/best/20261125-101500 --epochs 80` "
                       "on a run started with 50 epochs: a resumed run keeps its schedule, so it can end "
                       "exactly as an uninterrupted one would."),
    "E612": Entry("`archdsl train`/`eval`: a flag's value is out of range (`--epochs 0`, `--seed -1`, "
                  "`--lr inf`, `--limit 0`).", "See `archdsl train --help`.",
                  [X(argv=["train", "best.arch", "--epochs", "0"], setup=_spec)]),
    "E613": Entry("`archdsl eval`: the target is neither a run directory nor a .keras file.",
                  "Give a run directory or a .keras file.", [X(argv=["eval", "runs/best/nope.keras"])]),
    "E620": Entry("`archdsl train`: an unknown `--strategy` or `--precision`, or a `--peer-timeout` that is not "
                  "positive.", "Use one of the values the hint lists.",
                  [X(argv=["train", "best.arch", "--strategy", "mirrord"], setup=_spec)]),
    "E621": Entry("`archdsl train --strategy multiworker`: the TF_CONFIG environment variable is missing or wrong.",
                  "Set TF_CONFIG as the hint shows (see docs/distributed.md).",
                  [X(argv=["train", "best.arch", "--strategy", "multiworker"], setup=_spec,
                     patch=lambda: mock.patch.dict(os.environ, {"TF_CONFIG": '{"cluster": 3'}),
                     shown="TF_CONFIG='{\"cluster\": 3' archdsl train best.arch --strategy multiworker")]),
    "E630": Entry("`archdsl export --to` names an unknown target.", "Use `keras` or `pytorch`.",
                  [X(argv=["export", "best.arch", "--to", "tf", "-o", "model.py"], setup=_spec)]),
    "E631": Entry("`archdsl export -o` does not end in .py.", "Write e.g. `-o model.py`.",
                  [X(argv=["export", "best.arch", "--to", "keras", "-o", "model.txt"], setup=_spec)]),
    "E632": Entry("The export target cannot build an op or activation of the model.",
                  "Export to another target, or rewrite those layers.",
                  note="Every op and activation of the language has an export today; the check guards new ones."),
    "E640": Entry("`archdsl report -o` has an extension other than .html or .md.", "Write `-o report.html` or "
                  "`-o report.md`.", [X(argv=["report", "best.arch", "-o", "report.pdf"], setup=_spec)]),
    "E641": Entry("`archdsl report -o NAME.md`: NAME_files, where the pictures go, exists and is not a folder.",
                  "Choose another report name.",
                  [X(argv=["report", "best.arch", "-o", "report.md"],
                     setup=lambda d: (_spec(d), (d / "report_files").write_text("")))]),
    "E650": Entry("`archdsl draw`: the picture format cannot be told or does not match the file name.",
                  "Name the file with its format's extension (.svg, .png, .pdf, .dot, .txt), or give `--format`.",
                  [X(argv=["draw", "best.arch", "-o", "net.jpg"], setup=_spec)]),
    "E651": Entry("`archdsl draw`: the graphviz `dot` program is not installed. The .dot source is still written.",
                  "Install graphviz (`apt-get install graphviz`, `brew install graphviz`), or draw `--format ascii`.",
                  [X(argv=["draw", "best.arch", "-o", "net.svg"], setup=_spec,
                     patch=lambda: mock.patch.dict(os.environ, {"PATH": ""}),
                     shown="archdsl draw best.arch -o net.svg    # without graphviz")]),
    "E652": Entry("`archdsl draw`: graphviz failed to draw.", "Draw `--format dot` and report the problem.",
                  note="Not expected: archdsl escapes every label; the message carries graphviz's own error."),
}


# ---------------------------------------------------------------- producing the examples

def source_codes() -> dict[str, list[str]]:
    """Every code written in archdsl/ -> the modules that write it."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "archdsl").rglob("*.py")):
        for code in CODE.findall(path.read_text(encoding="utf-8")):
            module = path.relative_to(ROOT).as_posix()
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
    used = source_codes()
    cases = bad_cases()
    missing = sorted(set(used) - set(CODES))
    if missing:
        raise SystemExit(f"codes without an entry in scripts/make_errors_doc.py: {', '.join(missing)}")
    out = ["# Error codes", "",
           "<!-- generated by scripts/make_errors_doc.py from its table and real runs of the tool; do not edit -->",
           "",
           "Every error archdsl reports has one shape: where (`file:line:col`, for a spec), the code and what is "
           "wrong, the offending line with a caret under the problem, and a hint that says how to fix it. "
           "All errors of a spec are reported together (the first 50 printed, then their count). "
           "Exit status: 0 ok, 1 an assert failed or a run failed, 2 the spec, the data or the command line is wrong.",
           "",
           "| codes | stage | |", "|---|---|---|"]
    for prefix, stage, what in STAGES:
        out.append(f"| {prefix}xx | {stage} | {what} |")
    out.append("")
    for prefix, stage, _ in STAGES:
        codes = [c for c in sorted(CODES) if c.startswith(prefix)]
        out += [f"## {prefix}xx: {stage}", ""]
        for code in codes:
            entry = CODES[code]
            modules = ", ".join(f"`{m}`" for m in used.get(code, [])) or "not used"
            out += [f"### {code}", "", entry.meaning, "", f"Raised in: {modules}."]
            examples = entry.examples
            if not examples and code in cases:
                examples = [Example(bad=cases[code][0])]
            for example in examples:
                shown, output = _render(example)
                out += ["", "```console", f"$ {shown}", output, "```"]
            if entry.note:
                out += ["", entry.note]
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
