"""Faults during training: kills, a full disk, an unwritable run, damaged checkpoint files, damaged data.

The truth each test holds the trainer to:
- SIGKILL anywhere (inside an epoch, inside any file's write: after its data, before its rename): `--resume`
  succeeds, the history has every epoch exactly once, and equals an uninterrupted run's bit for bit;
- a full disk or an unwritable run directory while training: one clear error naming the file, no traceback,
  and the last committed checkpoint still loads (and resumes once the disk is freed);
- a damaged checkpoint (a truncated model file, a torn state.json) or a truncated history.csv: `--resume` names
  the damaged file and falls back to the previous good checkpoint, or fails cleanly when none is left;
- a corrupt or truncated image in a data folder or archive, a truncated .tar.gz: an error naming the file
  (most cases are in test_data.py; the ones here are those it lacked).

The kills run `archdsl train` in a subprocess through tests/fault_driver.py, which pauses at an exact point
(`ARCHDSL_FAULT_PAUSE`) so the kill lands there; everything else runs in-process (one TensorFlow start).
Data: a generated 16x16 two-class image folder (`--limit 128 --test-limit 64`), a tiny spec, batch 32,
3 epochs of 4 steps. Every wait is bounded; a subprocess is killed whatever happens.

CI runs three kill points; `ARCHDSL_FAULT_KILLS=N` adds N random ones (seed `ARCHDSL_FAULT_SEED`).
"""
from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from archdsl import runs
from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.tf

EPOCHS = 3
STEPS = 4  # 128 images / batch 32
SPEC = f"""\
model tiny
input 16x16x3
classes 2
conv 3x3 4 same bn relu
sep 3x3 8 same drop .1 bn relu
gap
dense classes
softmax
train {{
  batch 32
  epochs {EPOCHS}
  augment flip
}}
"""
RANDOM_KILLS = int(os.environ.get("ARCHDSL_FAULT_KILLS", "0"))
KILL_SEED = int(os.environ.get("ARCHDSL_FAULT_SEED", "0"))
TIMEOUT = 300  # seconds for any one training process


# ---------------------------------------------------------------- data, runs, helpers

def write_images(root: Path, per_class=(64, 32), side: int = 16) -> Path:
    """Two classes (dark, light) of random side x side PNGs, per_class = (train, test) images each."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for c, name in enumerate(("dark", "light")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                pixels = rng.integers(0, 128, (side, side, 3)) + 127 * c
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i:03d}.png")
    return root


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    (folder / "tiny.arch").write_text(SPEC)
    write_images(folder / "pets")
    common = ["--data", str(folder / "pets"), "--data-dir", str(folder / "cache"), "--limit", "128",
              "--test-limit", "64", "--verbose", "0"]
    return folder, common


def cli(*args) -> tuple[int, str, str]:
    """archdsl in-process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main([str(a) for a in args])
    return status, out.getvalue(), err.getvalue()


def the_run(out: Path) -> Path:
    found = sorted(p for p in (out / "tiny").iterdir() if p.is_dir())
    assert len(found) == 1, found
    return found[0]


def history(run: Path) -> list[list[str]]:
    """history.csv without its seconds column, as text (equal text: bit-for-bit equal floats)."""
    lines = (run / "history.csv").read_text().splitlines()
    assert lines[0].split(",") == list(runs.HISTORY_COLUMNS)
    return [line.split(",")[:-1] for line in lines[1:]]


def epochs_of(run: Path) -> list[int]:
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    from_state = [row["epoch"] for row in state["history"]]
    from_csv = [int(row[0]) for row in history(run)]
    assert from_state == from_csv, (from_state, from_csv)
    return from_csv


def error_line(status: int, err: str) -> str:
    """The one error of a failed command, and no traceback."""
    assert status not in (0, None), err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "error[" in line]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def reference(setup) -> Path:
    """An uninterrupted run, in-process."""
    folder, common = setup
    status, _, err = cli("train", folder / "tiny.arch", *common, "--out", folder / "reference")
    assert status == 0, err
    run = the_run(folder / "reference")
    assert epochs_of(run) == [1, 2, 3]
    return run


def killed_at(setup, pause: str, name: str) -> Path:
    """A run SIGKILLed where tests/fault_driver.py pauses (`batch:E:B` or `replace:FILE:N`)."""
    folder, common = setup
    out = folder / "killed" / name
    env = dict(os.environ, ARCHDSL_FAULT_PAUSE=pause, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests" / "fault_driver.py"), "train", folder / "tiny.arch",
                             *common, "--out", out], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=env, cwd=ROOT, stdin=subprocess.DEVNULL)
    seen: list[str] = []
    paused = threading.Event()

    def read():
        for line in proc.stderr:
            seen.append(line)
            if line.startswith("FAULT-PAUSE"):
                paused.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + TIMEOUT
        while not paused.wait(1):
            assert proc.poll() is None, f"finished without reaching {pause}:\n" + "".join(seen)
            assert time.monotonic() < deadline, f"{pause} not reached in {TIMEOUT} s:\n" + "".join(seen)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        reader.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    return the_run(out)


def committed_epoch(run: Path) -> int:
    return runs.load_state(runs.RunDir(run))["epoch"]


def expected_commit(pause: str) -> int:
    """The last epoch a kill at `pause` leaves committed (state.json is renamed last in an epoch)."""
    kind, a, b = pause.split(":")
    if kind == "batch":
        return int(a) - 1
    if a == "state.json":
        return int(b) - 2  # the first write is the run's start
    return int(a[len("epoch-"):len("epoch-") + 4]) - 1 if a.startswith("epoch-") else None


def resume_and_check(run: Path, reference: Path, committed: int) -> None:
    status, out, err = cli("train", "--resume", run, "--verbose", "0")
    assert status == 0, err
    assert "Traceback" not in err
    assert f"resuming {run} after epoch {committed} of {EPOCHS}" in out
    assert epochs_of(run) == [1, 2, 3]          # every epoch exactly once
    assert history(run) == history(reference)   # and what an uninterrupted run computes
    state = json.loads((run / "checkpoint" / "state.json").read_text())
    assert state["complete"] and state["epoch"] == EPOCHS


# ---------------------------------------------------------------- kills

KILL_POINTS = {
    "inside epoch 2": "batch:2:3",
    "inside the write of epoch 2's model": "replace:epoch-0002.keras:1",
    "inside the commit of epoch 2": "replace:state.json:3",
}


def _random_points(n: int, seed: int) -> dict[str, str]:
    rng = random.Random(seed)
    files = ["epoch-{e:04d}.keras:1", "epoch-{e:04d}.json:1", "history.csv:{e}", "metrics.json:{e}",
             "last.keras:{e}", "state.json:{s}"]
    points = {}
    while len(points) < n:
        e = rng.randint(1, EPOCHS)
        if rng.random() < 0.4:
            pause = f"batch:{e}:{rng.randint(1, STEPS)}"
        else:
            pause = "replace:" + rng.choice(files).format(e=e, s=e + 1)
        points[f"random {len(points) + 1}: {pause}"] = pause
        if len(points) > 6 * EPOCHS * STEPS:
            break
    return points


KILL_POINTS.update(_random_points(RANDOM_KILLS, KILL_SEED))


@pytest.mark.parametrize("name", KILL_POINTS)
def test_killed_anywhere_resumes_to_the_uninterrupted_result(setup, reference, name):
    pause = KILL_POINTS[name]
    run = killed_at(setup, pause, name.replace(" ", "_").replace(":", "_"))
    committed = committed_epoch(run)
    if expected_commit(pause) is not None:
        assert committed == expected_commit(pause), pause
    if committed == EPOCHS:  # killed after the last commit (e.g. in its pruning): nothing left to do
        status, out, _ = cli("train", "--resume", run)
        assert status == 0 and "is complete" in out
        return
    resume_and_check(run, reference, committed)


@pytest.fixture(scope="module")
def two_epochs(setup) -> Path:
    """A pristine run with epochs 1 and 2 committed (and both checkpoints kept): killed writing epoch 3's model."""
    run = killed_at(setup, "replace:epoch-0003.keras:1", "pristine")
    assert committed_epoch(run) == 2
    assert (run / "checkpoint" / "epoch-0001.keras").is_file() and (run / "checkpoint" / "epoch-0002.keras").is_file()
    return run


def copy_of(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / run.name
    shutil.copytree(run, target)
    return target


# ---------------------------------------------------------------- damaged run files

def _truncate(path: Path, keep: float = 0.5) -> None:
    with open(path, "r+b") as f:
        f.truncate(int(path.stat().st_size * keep))


@pytest.mark.parametrize("damage,named,falls_back_to", [
    (lambda run: _truncate(run / "checkpoint" / "epoch-0002.keras"), "epoch-0002.keras", 1),
    (lambda run: (run / "checkpoint" / "state.json").write_text('{"format": "archdsl-run/1", "epo'), "state.json", 2),
    (lambda run: (_truncate(run / "checkpoint" / "state.json", 0.3),
                  _truncate(run / "checkpoint" / "epoch-0002.json", 0.3)), "state.json", 1),
], ids=["truncated model of epoch 2", "torn state.json", "torn state.json and epoch-0002.json"])
def test_damaged_checkpoint_is_named_and_the_previous_one_used(two_epochs, reference, tmp_path, damage, named,
                                                               falls_back_to):
    run = copy_of(two_epochs, tmp_path)
    damage(run)
    status, out, err = cli("train", "--resume", run, "--verbose", "0")
    assert status == 0, err
    warning = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warning and named in warning[0] and f"epoch {falls_back_to} instead" in warning[0], err
    assert f"after epoch {falls_back_to} of {EPOCHS}" in out
    assert epochs_of(run) == [1, 2, 3]
    assert history(run) == history(reference)


def test_no_good_checkpoint_left_is_a_clean_error(two_epochs, tmp_path):
    run = copy_of(two_epochs, tmp_path)
    for e in (1, 2):
        _truncate(run / "checkpoint" / f"epoch-{e:04d}.keras")
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    line = error_line(*cli("train", "--resume", run)[::2])
    assert "error[E523]: corrupt checkpoint" in line and "epoch-0002.keras" in line
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before  # nothing touched


def test_truncated_history_is_rewritten_from_the_checkpoint(two_epochs, reference, tmp_path):
    """history.csv is derived from the checkpoint's state: a torn one costs nothing on resume."""
    run = copy_of(two_epochs, tmp_path)
    _truncate(run / "history.csv", 0.6)
    status, out, err = cli("train", "--resume", run, "--verbose", "0")
    assert status == 0, err
    assert f"after epoch 2 of {EPOCHS}" in out
    assert epochs_of(run) == [1, 2, 3]
    assert history(run) == history(reference)


def test_truncated_history_is_named_on_resume(two_epochs, tmp_path):
    run = copy_of(two_epochs, tmp_path)
    whole = (run / "history.csv").read_bytes()
    _truncate(run / "history.csv", 0.6)
    status, _, err = cli("train", "--resume", run, "--verbose", "0")
    assert status == 0
    assert f"warning: {run / 'history.csv'} is damaged (its rows differ from the checkpoint's); kept as " \
           "history.csv.damaged and rewritten from the checkpoint of epoch 2" in err
    # the state is the truth: the same rows again, then the epoch the resumed run trained
    assert (run / "history.csv").read_bytes().startswith(whole)
    assert epochs_of(run) == [1, 2, 3]
    assert (run / "history.csv.damaged").read_bytes() == whole[:len((run / "history.csv.damaged").read_bytes())]


# ---------------------------------------------------------------- a full disk, an unwritable run

def _failing_replace(name: str, nth: int, error: int):
    real, seen = os.replace, {"n": 0}

    def replace(src, dst, *args, **kwargs):
        if os.path.basename(os.fspath(dst)) == name:
            seen["n"] += 1
            if seen["n"] >= nth:
                raise OSError(error, os.strerror(error), os.fspath(dst))
        return real(src, dst, *args, **kwargs)
    return replace


@pytest.mark.parametrize("name,nth,error,committed", [
    ("epoch-0002.keras", 1, errno.ENOSPC, 1),   # the disk fills while epoch 2's model is written
    ("state.json", 3, errno.ENOSPC, 1),         # ... at epoch 2's commit point
    ("history.csv", 2, errno.EACCES, 1),        # the run directory becomes unwritable after epoch 1
    ("epoch-0001.keras", 1, errno.EROFS, 0),    # read-only before any epoch is committed
], ids=["disk full: model", "disk full: commit", "unwritable: history", "read-only: first model"])
def test_write_failure_is_clear_and_the_last_checkpoint_survives(setup, reference, tmp_path, monkeypatch, name,
                                                                 nth, error, committed):
    import keras

    folder, common = setup
    out = tmp_path / "runs"
    with monkeypatch.context() as m:
        m.setattr(os, "replace", _failing_replace(name, nth, error))
        line = error_line(*cli("train", folder / "tiny.arch", *common, "--out", out)[::2])
    assert f"error[E501]: cannot write {out}" in line and name in line and os.strerror(error) in line, line
    run = the_run(out)
    assert not [p for p in run.rglob("*.tmp")] and not [p for p in (run / "checkpoint").glob(".*")], \
        "temporary files are removed"
    assert committed_epoch(run) == committed
    if committed:
        state = runs.load_state(runs.RunDir(run))
        model = keras.models.load_model(state["checkpoint_path"], compile=False)  # loads
        assert model.count_params() == state["params"]
        # the disk is free again: the run resumes and ends like an uninterrupted one
        resume_and_check(run, reference, committed)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a chmod 0500 folder anyway")
def test_chmod_unwritable_run_directory(two_epochs, tmp_path):
    run = copy_of(two_epochs, tmp_path)
    os.chmod(run / "checkpoint", 0o500)
    try:
        line = error_line(*cli("train", "--resume", run, "--verbose", "0")[::2])
    finally:
        os.chmod(run / "checkpoint", 0o700)
    assert "checkpoint" in line and committed_epoch(run) == 2


# ---------------------------------------------------------------- damaged data (what test_data.py lacks)

def _load_error(path: Path, data_dir: Path) -> str:
    from archdsl.training.data import load_dataset
    from archdsl.errors import DataError

    with pytest.raises(DataError) as caught:
        load_dataset(str(path), data_dir)
    return caught.value.message


@pytest.mark.parametrize("garbage", [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, os.urandom(300)],
                         ids=["empty", "png header then garbage", "random bytes"])
def test_corrupt_image_in_a_folder_is_named(tmp_path, garbage):
    root = write_images(tmp_path / "pets", per_class=(3, 2))
    bad = root / "train" / "light" / "001.png"
    bad.write_bytes(garbage)
    message = _load_error(root, tmp_path / "cache")
    assert message.startswith(f"'{bad}' ") and ("corrupt or truncated image" in message
                                                 or "is not an image file" in message), message


def test_truncated_image_inside_an_archive_is_named_by_archive_and_member(tmp_path):
    root = write_images(tmp_path / "pets", per_class=(3, 2))
    member = root / "test" / "dark" / "000.png"
    _truncate(member, 0.5)
    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(root, arcname="pets")
    message = _load_error(archive, tmp_path / "cache")
    assert f"'{archive}:pets/test/dark/000.png'" in message and "corrupt or truncated" in message, message


@pytest.mark.parametrize("keep", [0.1, 0.5, 0.95])
def test_truncated_archive_is_named_wherever_it_is_cut(tmp_path, keep):
    root = write_images(tmp_path / "pets", per_class=(8, 4))
    full = tmp_path / "full.tar.gz"
    with tarfile.open(full, "w:gz") as tar:
        tar.add(root, arcname="pets")
    cut = tmp_path / "pets.tar.gz"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * keep)])
    message = _load_error(cut, tmp_path / "cache")
    assert f"'{cut}' is truncated or not a valid .tar.gz" in message, message
