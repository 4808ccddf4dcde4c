"""Same seed, same history; and a run killed in epoch 2 and resumed equals an uninterrupted one.
Also: which batch norm a resumed run trains with (its own; another only with a warning).

All runs: the tiny spec, 2048 training images (32 steps of 64, about 2 s an epoch, long
enough to kill a run inside epoch 2), 128 test images, 3 epochs, seed 0.
"""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest

from test_train import (ROOT, cli_command, cli_env, history_values, keras_arrays, one_line_error, run_cli,
                        the_run, tree_digest, write_spec)

pytestmark = pytest.mark.tf

EPOCHS = 3


@pytest.fixture(scope="module")
def setup(cifar_archive, data_cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("resume")
    spec = write_spec(folder)
    common = ["--data", cifar_archive, "--data-dir", data_cache, "--limit", 2048, "--test-limit", 128,
              "--epochs", EPOCHS, "--verbose", 2]
    return folder, spec, common


@pytest.fixture(scope="module")
def reference(setup) -> Path:
    """An uninterrupted run."""
    folder, spec, common = setup
    proc = run_cli("train", spec, *common, "--out", folder / "reference")
    assert proc.returncode == 0, proc.stderr
    return the_run(folder / "reference")


@pytest.fixture(scope="module")
def killed(setup) -> tuple[Path, Path]:
    """A run SIGKILLed in epoch 2 (after epoch 1's checkpoint), and an untouched copy of it."""
    folder, spec, common = setup
    out = folder / "killed"
    proc = subprocess.Popen(cli_command("train", spec, *common, "--out", out), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=cli_env(), cwd=ROOT, stdin=subprocess.DEVNULL)
    seen: list[str] = []
    epoch2 = threading.Event()

    def read():
        for line in proc.stdout:
            seen.append(line)
            if line.startswith(f"Epoch 2/{EPOCHS}"):
                epoch2.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert epoch2.wait(timeout=240), "".join(seen)
        run = the_run(out)
        state = json.loads((run / "checkpoint/state.json").read_text())
        assert state["epoch"] == 1  # epoch 1 is committed, epoch 2 has started
        time.sleep(0.5)  # well inside epoch 2 (it takes about 2 s)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((run / "checkpoint/state.json").read_text())
    assert state["epoch"] == 1, "the run finished epoch 2 before the kill: the test did not test anything"
    assert [row[0] for row in history_values(run)] == ["1"]
    copy = folder / "killed-copy" / run.name
    shutil.copytree(run, copy)
    return run, copy


def test_same_seed_same_history(setup, reference):
    folder, spec, common = setup
    proc = run_cli("train", spec, *common, "--out", folder / "again")
    assert proc.returncode == 0, proc.stderr
    again = the_run(folder / "again")
    assert len(history_values(reference)) == EPOCHS
    assert history_values(again) == history_values(reference)
    assert keras_arrays(again / "last.keras") == keras_arrays(reference / "last.keras")


def test_killed_run_resumes_to_the_uninterrupted_result(killed, reference, data_cache):
    run, _ = killed
    proc = run_cli("train", "--resume", run, "--data-dir", data_cache)
    assert proc.returncode == 0, proc.stderr
    assert f"resuming {run} after epoch 1 of {EPOCHS}" in proc.stdout
    assert [row[0] for row in history_values(run)] == ["1", "2", "3"]  # every epoch exactly once
    assert history_values(run) == history_values(reference)           # bit for bit
    # weights, batch-norm statistics, optimizer moments and iteration count: all equal
    assert keras_arrays(run / "last.keras") == keras_arrays(reference / "last.keras")
    assert keras_arrays(run / "best.keras") == keras_arrays(reference / "best.keras")
    state = json.loads((run / "checkpoint/state.json").read_text())
    ref_state = json.loads((reference / "checkpoint/state.json").read_text())
    assert state["complete"] and state["rng"] == ref_state["rng"] and state["best"] == ref_state["best"]

    before = tree_digest(run)
    proc = run_cli("train", "--resume", run)
    assert proc.returncode == 0 and "is complete" in proc.stdout
    assert tree_digest(run) == before


def test_resume_of_a_corrupt_checkpoint_fails_cleanly(killed, tmp_path):
    _, pristine = killed
    run = tmp_path / pristine.name
    shutil.copytree(pristine, run)
    checkpoint = run / "checkpoint/epoch-0001.keras"
    with open(checkpoint, "r+b") as f:
        f.truncate(checkpoint.stat().st_size // 2)
    before = tree_digest(run)
    proc = run_cli("train", "--resume", run)
    line = one_line_error(proc)
    assert "corrupt checkpoint" in line and "epoch-0001.keras" in line
    assert tree_digest(run) == before


def test_resume_keeps_the_runs_settings(killed, tmp_path):
    _, pristine = killed
    run = tmp_path / pristine.name
    shutil.copytree(pristine, run)
    before = tree_digest(run)
    proc = run_cli("train", "--resume", run, "--epochs", 5)
    assert "--epochs 5 differs from the run's 3" in one_line_error(proc)
    assert tree_digest(run) == before


def batch_norm_classes(keras_file) -> set[str]:
    """The registered names of a saved model's batch-norm layers (Keras' own: plain "BatchNormalization").
    A run's checkpoints name the layer it trains with; its best.keras and last.keras, Keras' own always."""
    with zipfile.ZipFile(keras_file) as z:
        config = json.loads(z.read("config.json"))
    return {layer.get("registered_name") or layer["class_name"] for layer in config["config"]["layers"]
            if layer["class_name"] == "BatchNormalization"}


def test_new_runs_train_fused_and_runs_from_before_keep_keras(killed, tmp_path, data_cache):
    _, pristine = killed
    state = json.loads((pristine / "checkpoint/state.json").read_text())
    assert state["settings"]["batchnorm"] == "fused"
    assert batch_norm_classes(pristine / "checkpoint/epoch-0001.keras") == {"archdsl>BatchNormalization"}
    assert batch_norm_classes(pristine / "last.keras") == {"BatchNormalization"}

    old = tmp_path / "old" / pristine.name  # a run from before --batchnorm: no such setting
    shutil.copytree(pristine, old)
    del state["settings"]["batchnorm"]
    (old / "checkpoint/state.json").write_text(json.dumps(state))
    proc = run_cli("train", "--resume", old, "--data-dir", data_cache)
    assert proc.returncode == 0, proc.stderr
    assert "batch norm keras" in proc.stdout and "--batchnorm" not in proc.stderr
    assert batch_norm_classes(old / "checkpoint/epoch-0003.keras") == {"BatchNormalization"}


def test_resume_may_switch_batch_norm_with_a_warning(killed, tmp_path, data_cache):
    _, pristine = killed
    run = tmp_path / pristine.name
    shutil.copytree(pristine, run)
    proc = run_cli("train", "--resume", run, "--batchnorm", "keras", "--data-dir", data_cache)
    assert proc.returncode == 0, proc.stderr
    assert "the run trained with fused batch norm so far" in proc.stderr and "batch norm keras" in proc.stdout
    assert batch_norm_classes(run / "checkpoint/epoch-0003.keras") == {"BatchNormalization"}
    state = json.loads((run / "checkpoint/state.json").read_text())
    assert state["settings"]["batchnorm"] == "keras" and state["epoch"] == 3
    assert "--batchnorm keras" in state["commands"][-1]["command"] and state["commands"][-1]["from_epoch"] == 1
