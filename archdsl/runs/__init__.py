"""Run directories: layout, atomic per-epoch checkpoints, resume state, history and metrics.

    <out>/<spec stem>/<YYYYmmdd-HHMMSS>[-N]/
        spec.arch          the spec text as given
        recipe.arch        the `--recipe` file as given (only if one was)
        resolved.json      the resolved IR (with the command line's overrides applied)
        history.csv        epoch, lr, loss, accuracy, val_loss, val_accuracy, seconds (one row per epoch)
        metrics.json       summary so far: best/final val accuracy, wall time, images/s, complete,
                           the command lines that trained it; with --val-split, the test accuracy
                           scored once at the end
        best.keras         the model of the best val accuracy (EMA weights if `ema` is on)
        last.keras         the model after the last complete epoch
        tb/                TensorBoard logs (epoch scalars only)
        checkpoint/
            state.json         the commit point: settings, completed epochs, history, RNG state
            epoch-NNNN.keras   model + optimizer state after epoch NNNN (this and the one before)
            epoch-NNNN.json    the state as of that epoch (a fallback if state.json's file is damaged)

Nothing in this module needs TensorFlow, except `save_model`, which is handed a Keras model.

After each epoch the trainer writes, each file atomically (temp name in the same folder,
fsync, os.replace): epoch-N.keras, epoch-N.json, history.csv, metrics.json, last.keras,
best.keras and, LAST, state.json; then it deletes checkpoints older than epoch N-1.
A kill at any point leaves state.json naming a complete, checksummed checkpoint; files
written after it (history, last, best) are rewritten when the resumed run redoes the epoch.
"""
from __future__ import annotations

import csv
import errno
import fcntl
import hashlib
import io
import json
import os
import re
import tempfile
import time
from pathlib import Path

from ..errors import RunError
from ..fileio import os_reason, replace_atomically, replace_with_bytes
from .state import check_state

FORMAT = "archdsl-run/1"
HISTORY_COLUMNS = ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")
STATE = "state.json"
STATE_KEYS = ("format", "epoch", "epochs", "batch", "lr", "complete", "checkpoint", "settings", "data", "rng",
              "best", "history")
RUN_HINT = "give a folder made by `archdsl train`, e.g. runs/best/20260101-120000"
_EPOCH_FILE = re.compile(r"^epoch-(\d{4,})\.json$")


class RunDir:
    """The paths of one run directory."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.spec = self.path / "spec.arch"
        self.recipe = self.path / "recipe.arch"
        self.resolved = self.path / "resolved.json"
        self.history = self.path / "history.csv"
        self.metrics = self.path / "metrics.json"
        self.best = self.path / "best.keras"
        self.last = self.path / "last.keras"
        self.tb = self.path / "tb"
        self.checkpoint = self.path / "checkpoint"
        self.state = self.checkpoint / STATE

    def epoch_model(self, epoch: int) -> Path:
        return self.checkpoint / f"epoch-{epoch:04d}.keras"

    def epoch_state(self, epoch: int) -> Path:
        return self.checkpoint / f"epoch-{epoch:04d}.json"

    def __str__(self) -> str:
        return str(self.path)


# --- creating a run --------------------------------------------------------------------------

def check_out(out: str | os.PathLike) -> Path:
    """Check, creating nothing, that runs can be written under `out`; raise RunError if not.

    An existing `out` gets a probe file written and deleted; a missing one needs its
    nearest existing ancestor to be a writable folder.
    """
    root = Path(out).expanduser().absolute()
    try:
        if root.is_dir():
            fd, probe = tempfile.mkstemp(prefix=".archdsl-write-test-", dir=root)
            os.close(fd)
            os.unlink(probe)
        else:
            ancestor = root
            while not ancestor.exists() and ancestor != ancestor.parent:
                ancestor = ancestor.parent
            if not ancestor.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, f"{ancestor} is not a directory")
            if not os.access(ancestor, os.W_OK | os.X_OK):
                raise PermissionError(errno.EACCES, f"{ancestor} is not writable")
    except OSError as exc:
        raise RunError(f"cannot write runs to --out {out}: {exc.strerror or os_reason(exc)}",
                       hint="choose a writable folder with --out", code="E510") from None
    return root


def create_run_dir(out: Path, stem: str, now: float | None = None) -> RunDir:
    """A new, empty run directory `<out>/<stem>/<timestamp>[-N]`; never an existing one."""
    parent = out / stem
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    try:
        parent.mkdir(parents=True, exist_ok=True)
        for n in range(1, 10000):
            path = parent / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                path.mkdir()  # exclusive: two runs started in the same second get different folders
            except FileExistsError:
                continue
            run = RunDir(path)
            run.checkpoint.mkdir()
            return run
    except OSError as exc:
        raise RunError(f"cannot create a run directory in {parent}: {os_reason(exc)}",
                       hint="choose a writable folder with --out", code="E510") from None
    raise RunError(f"too many runs named {stamp} in {parent}", hint="start it again in a second, or choose "
                   "another folder with --out", code="E510")


# --- atomic writes ---------------------------------------------------------------------------

def write_bytes(path: Path, data: bytes) -> None:
    replace_with_bytes(path, data)


def write_json(path: Path, obj) -> None:
    write_bytes(path, (json.dumps(obj, indent=1, sort_keys=False) + "\n").encode())


def save_model(keras_model, path: Path) -> str:
    """`keras_model.save(path)` atomically (model, weights and optimizer state); returns its sha256."""
    digest = hashlib.sha256()

    def write(tmp: str) -> None:
        keras_model.save(tmp)
        with open(tmp, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
            os.fsync(f.fileno())

    replace_atomically(path, write, suffix=".keras")
    return digest.hexdigest()


def history_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(HISTORY_COLUMNS)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in HISTORY_COLUMNS])
    return buf.getvalue()


def read_history(path: str | os.PathLike) -> list[dict]:
    """history.csv as a list of dicts: epoch an int, the other columns floats."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return [{k: (int(v) if k == "epoch" else float(v) if v not in ("", None) else None) for k, v in r.items()}
            for r in rows]


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # round-trips exactly
    return str(value)


def summarize(state: dict, run: "RunDir | None" = None) -> dict:
    """metrics.json: the run so far, from its state."""
    h = state["history"]
    n = state["data"]["train_images"] * state.get("passes", 1)  # images an epoch trains on
    train_s = sum(r["train_seconds"] for r in h)
    later = h[1:]  # the first epoch of a process also traces the graph
    test = state.get("test") or {}
    out = {"spec": state["spec"], "run_dir": str(run.path) if run else None, "complete": state["complete"],
           "epochs_done": state["epoch"], "epochs": state["epochs"],
           "best_epoch": state["best"]["epoch"], "best_val_accuracy": state["best"]["val_accuracy"],
           "final_val_accuracy": h[-1]["val_accuracy"] if h else None,
           "final_val_loss": h[-1]["val_loss"] if h else None,
           "final_accuracy": h[-1]["accuracy"] if h else None,
           "wall_seconds": sum(r["seconds"] for r in h), "train_seconds": train_s,
           "images_per_second": n * len(h) / train_s if train_s else None,
           "images_per_second_after_epoch_1": (n * len(later) / sum(r["train_seconds"] for r in later)
                                               if later else None),
           # held out (--val-split): the validation chose best.keras, and the test split was scored once at the end
           "val_split": state["settings"].get("val_split"), "test_accuracy": test.get("accuracy"),
           "final_test_accuracy": test.get("final_accuracy"), "test_images": test.get("images"),
           "params": state.get("params"), "seed": state["settings"]["seed"], "batch": state["batch"],
           "lr": state["lr"], "data": state["data"], "distribution": state.get("distribution"),
           "commands": state.get("commands", [])}
    return out


def data_fingerprint(dataset) -> str:
    """sha256 of a dataset's arrays (what was trained on, after --limit), to notice changed data on resume."""
    import numpy as np

    digest = hashlib.sha256()
    for name in ("x_train", "y_train", "x_test", "y_test"):
        digest.update(memoryview(np.ascontiguousarray(getattr(dataset, name))).cast("B"))
    return digest.hexdigest()


# --- resuming --------------------------------------------------------------------------------

def open_run(path: str | os.PathLike) -> RunDir:
    """The run at `path`, checked to look like a run; RunError if it is missing or is not one."""
    run = RunDir(Path(path).expanduser())
    if not run.path.exists():
        raise RunError(f"run directory {run} does not exist", hint=RUN_HINT, code="E520")
    if not run.path.is_dir():
        raise RunError(f"{run} is not a directory", hint=RUN_HINT, code="E520")
    # a resume writes into checkpoint/ and tb/ and reads spec.arch and resolved.json: all of them the run's own
    for p in (run.checkpoint, run.tb, run.tb / "train", run.tb / "validation", run.spec, run.resolved, run.recipe):
        real = outside(run, p)
        if real:
            raise RunError(f"{p} is a link to {real}, outside the run folder", code="E521",
                           hint="a run is read and written only inside its folder: copy the file or folder in "
                                "place of the link, or start a new run")
    if not run.state.is_file() and not list(_epoch_states(run)):
        raise RunError(f"{run} is not an archdsl run (it has no {Path('checkpoint') / STATE})", hint=RUN_HINT,
                       code="E521")
    for f in (run.spec, run.resolved):
        if not f.is_file():
            raise RunError(f"{run} is not a complete archdsl run (it has no {f.name})", hint=RUN_HINT,
                           code="E521")
    return run


def load_state(run: RunDir, warn=None, check_model: bool = True) -> dict:
    """The newest consistent state of `run`: state.json, or else the newest usable epoch-N.json.

    A state is consistent when it parses and (unless `check_model` is False: `eval` needs only
    the settings) the checkpoint file it names has the recorded sha256. Raises RunError naming
    the damaged file when none is usable.
    """
    first_error = None
    for path in ([run.state] if run.state.exists() else []) + [p for _, p in _epoch_states(run)]:
        try:
            state = _read_state(run, path, check_model)
        except RunError as exc:
            first_error = first_error or exc
            continue
        if first_error is not None and warn is not None:
            using = "resuming from the checkpoint" if check_model else "using the state"
            warn(f"{first_error.message}; {using} of epoch {state['epoch']} instead")
        return state
    raise first_error or RunError(f"{run} has no usable checkpoint", hint=RUN_HINT, code="E522")


def check_history(run: RunDir, state: dict, warn) -> None:
    """Repair history.csv if it disagrees with the state being resumed, and say so.

    The state is the truth; history.csv is written from it each epoch before the commit point, so
    one row more than the state is what a kill leaves, not damage. Anything else (fewer rows, rows
    that differ, a missing or unreadable file) is named, and the file is kept beside the run
    (history.csv.damaged) before it is rewritten.
    """
    expected = history_csv(state["history"]).splitlines()
    if outside(run, run.history):  # a link out of the run: neither read nor written through
        actual, why = [], "it is a link to a file outside the run folder"
    else:
        try:
            actual = run.history.read_text(encoding="utf-8").splitlines()
            why = "its rows differ from the checkpoint's"
        except FileNotFoundError:
            actual, why = None, "it is missing"
        except (OSError, UnicodeDecodeError) as exc:
            actual, why = [], f"it cannot be read: {os_reason(exc)}"
    if actual is None and not state["history"]:
        return
    if actual is not None and (actual == expected or actual[:-1] == expected):
        return
    where = f"rewritten from the checkpoint of epoch {state['epoch']}"
    if actual is not None:
        aside = run.history.with_name(run.history.name + ".damaged")
        n = 1
        while aside.exists():
            n += 1
            aside = run.history.with_name(f"{run.history.name}.damaged-{n}")
        os.replace(run.history, aside)
        where = f"kept as {aside.name} and {where}"
    write_bytes(run.history, history_csv(state["history"]).encode())
    warn(f"{run.history} is damaged ({why}); {where}")


def read_json(path: Path):
    """A JSON file's value; text nested too deeply for Python's parser is a ValueError, as other bad JSON is."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError("its JSON is nested too deeply to read") from None


def outside(run: RunDir, path: Path) -> str | None:
    """Where `path` really is if a link takes it out of the run folder; None if it is inside (or absent)."""
    root = os.path.realpath(run.path)
    real = os.path.realpath(path)
    return None if real == root or real.startswith(root.rstrip(os.sep) + os.sep) else real


def _read_state(run: RunDir, path: Path, check_model: bool = True) -> dict:
    """The state in `path`, checked; its model file (checkpoint_path) is the epoch's own, derived, never a path
    the file gives. Only files inside the run folder are read."""
    for f, kind in ((run.checkpoint, "folder"), (path, "file")):
        if outside(run, f):
            raise RunError(f"{f} is a link to a {kind} outside the run folder ({outside(run, f)})", code="E523",
                           hint="a run is resumed only from its own files; start a new run")
    try:
        state = read_json(path)
        if not isinstance(state, dict) or state.get("format") != FORMAT:
            raise ValueError(f"not an {FORMAT} state")
        check_state(state)
        numbered = _EPOCH_FILE.match(path.name)
        if numbered and int(numbered.group(1)) != state["epoch"]:
            raise ValueError(f"it holds the state of epoch {state['epoch']}")
    except (OSError, ValueError) as exc:
        raise RunError(f"corrupt checkpoint {path}: {os_reason(exc)}", hint="the run cannot be resumed from "
                       "this file; start a new run", code="E523") from None
    state.pop("checkpoint_path", None)  # set below, from the epoch; never taken from the file
    if state["epoch"] and check_model:
        model = run.epoch_model(state["epoch"])
        if outside(run, model):
            raise RunError(f"{model} is a link to a file outside the run folder ({outside(run, model)})",
                           hint="a run is resumed only from its own files; start a new run", code="E523")
        if not model.is_file():
            raise RunError(f"missing checkpoint {model} (named by {path.name})",
                           hint="the run cannot be resumed from it; start a new run", code="E523")
        if _sha256(model) != state.get("sha256"):
            raise RunError(f"corrupt checkpoint {model}: its checksum does not match {path.name}",
                           hint="the file was truncated or changed; start a new run", code="E523")
        state["checkpoint_path"] = str(model)
    return state


def _epoch_states(run: RunDir):
    """(epoch, path) of checkpoint/epoch-N.json, newest first."""
    if not run.checkpoint.is_dir():
        return []
    found = [(int(m.group(1)), run.checkpoint / m.group(0))
             for m in map(_EPOCH_FILE.match, os.listdir(run.checkpoint)) if m]
    return sorted(found, reverse=True)


def prune_checkpoints(run: RunDir, keep_from: int) -> None:
    """Delete epoch-N.{keras,json} for N < keep_from, and temp files of killed writers."""
    for name in os.listdir(run.checkpoint):
        m = re.match(r"^epoch-(\d{4,})\.(keras|json)$", name)
        if (m and int(m.group(1)) < keep_from) or (name.startswith(".") and name.endswith((".tmp", ".keras"))):
            _unlink(run.checkpoint / name)


class RunLock:
    """An exclusive lock on a run directory, so two processes never write one run."""

    def __init__(self, run: RunDir):
        self.run = run
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.run.path, os.O_RDONLY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self.fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise RunError(f"run {self.run} is being written by another archdsl process",
                               hint="wait for it to finish, or stop it first", code="E524") from None
            raise
        return self

    def __exit__(self, *exc):
        os.close(self.fd)


# --- helpers ---------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unlink(path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
