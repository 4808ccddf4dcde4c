"""Run folders that were edited by hand, damaged or made by someone else: `train --resume`, `eval` and `report`
read them without a traceback and write nothing outside the run folder (issue 27).

The truth each test holds archdsl to: what a resume reads and writes is inside its run folder, by names it
derives itself (never a path or a cache folder from state.json); a file that no longer agrees with the run
is named; anything else is one of archdsl's errors, never a traceback.

Data: a generated 8x8 two-class image folder (16 training and 8 test images), a tiny spec, batch 8, two
epochs of two steps; the run is trained once (in-process) and rolled back to its epoch-1 checkpoint, as a kill
during epoch 2 leaves it. Everything runs in-process.
"""
from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from archdsl.cli import main

pytestmark = pytest.mark.tf

SPEC = """\
model tiny
input 8x8x3
classes 2
conv 3x3 4 same bn relu
sep 3x3 8 same drop .1 bn relu
gap
dense classes
softmax
train {
  batch 8
  epochs 2
  augment flip
}
"""


def write_images(root: Path, per_class=(8, 4)) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(("dark", "light")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 128, (8, 8, 3)) + 127 * c
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


def cli(*args) -> tuple[int, str, str]:
    """archdsl in-process: (status, stdout, stderr); an exception that is not archdsl's escapes (a traceback)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def error_line(status: int, err: str) -> str:
    """The one error of a failed command."""
    assert status not in (0, None), err
    lines = [line for line in err.splitlines() if "error[" in line]
    assert len(lines) == 1, err
    return lines[0]


def edit_states(run: Path, **values) -> None:
    """Set top-level keys (or settings.KEY with settings__KEY) in state.json and every epoch-N.json."""
    for path in sorted((run / "checkpoint").glob("*.json")):
        state = json.loads(path.read_text())
        for key, value in values.items():
            if key.startswith("settings__"):
                state["settings"][key.removeprefix("settings__")] = value
            else:
                state[key] = value
        path.write_text(json.dumps(state))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(folder, pristine run rolled back to epoch 1 of 2, the spec, the data folder, the data cache)."""
    folder = tmp_path_factory.mktemp("hostile")
    spec = folder / "tiny.arch"
    spec.write_text(SPEC)
    data = write_images(folder / "pets")
    cache = folder / "cache"
    status, _, err = cli("train", spec, "--data", data, "--data-dir", cache, "--limit", 16, "--test-limit", 8,
                         "--out", folder / "runs", "--verbose", 0)
    assert status == 0, err
    (run,) = (folder / "runs" / "tiny").iterdir()
    checkpoint = run / "checkpoint"
    shutil.copyfile(checkpoint / "epoch-0001.json", checkpoint / "state.json")  # as a kill in epoch 2 leaves it
    (checkpoint / "epoch-0002.json").unlink()
    (checkpoint / "epoch-0002.keras").unlink()
    return folder, run, spec, data, cache


@pytest.fixture
def run(setup, tmp_path) -> Path:
    """A fresh copy of the pristine run."""
    copy = tmp_path / "run"
    shutil.copytree(setup[1], copy, symlinks=True)
    return copy


# --- item 7: the data cache is the command line's (or the default), never a folder named by the state -----

def test_resume_and_eval_never_write_the_cache_folder_the_state_names(setup, run, tmp_path, monkeypatch):
    elsewhere, default = tmp_path / "elsewhere", tmp_path / "default-cache"
    monkeypatch.setenv("ARCHDSL_DATA", str(default))
    edit_states(run, settings__data_dir=str(elsewhere))
    status, out, err = cli("train", "--resume", run, "--verbose", 0)
    assert status == 0, err
    assert not elsewhere.exists() and (default / "decoded").is_dir()
    shutil.rmtree(default)
    edit_states(run, settings__data_dir=str(elsewhere))
    status, out, err = cli("eval", run)
    assert status == 0, err
    assert not elsewhere.exists() and (default / "decoded").is_dir()


# --- item 10: an edited spec.arch is named, and the run goes on with resolved.json ----------------------------

def test_an_edited_spec_copy_is_named_and_the_run_resumes_with_resolved_json(setup, run):
    folder, _, spec, _, cache = setup
    (run / "spec.arch").write_text(SPEC.replace("sep 3x3 8", "sep 3x3 12"))  # weights of 8 filters would not load
    status, out, err = cli("train", "--resume", run, "--data-dir", cache, "--verbose", 0)
    assert status == 0, err
    assert (f"warning: {run / 'spec.arch'} differs from {run / 'resolved.json'} (it describes another model or "
            "recipe): resuming with resolved.json") in err
    assert json.loads((run / "checkpoint" / "state.json").read_text())["epoch"] == 2
    # untouched, it resumes without a word (the copy is the spec the run was started with)
    copy = run.parent / "untouched"
    shutil.copytree(setup[1], copy)
    status, out, err = cli("train", "--resume", copy, "--data-dir", cache, "--verbose", 0)
    assert status == 0 and "warning" not in err, err


# --- item 16 (part): a resolved.json edited after the checkpoint was written is E525, naming the file -----------

def test_an_edited_resolved_json_is_e525_naming_it(setup, run):
    cache = setup[4]
    resolved = json.loads((run / "resolved.json").read_text())
    resolved["layers"][0]["filters"] = 6  # the checkpoint holds 4 filters
    (run / "resolved.json").write_text(json.dumps(resolved))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    status, out, err = cli("train", "--resume", run, "--data-dir", cache, "--verbose", 0)
    line = error_line(status, err)
    assert line.startswith(f"error[E525]: checkpoint {run / 'checkpoint' / 'epoch-0001.keras'} does not fit the "
                           f"model of {run / 'resolved.json'}"), line
    assert "Traceback" not in err and {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
