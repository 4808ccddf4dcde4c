"""Honest validation: `--val-split N` holds out training images (stratified, fixed by the seed) to validate on
and choose best.keras, and the test split is scored once at the end; without it the test split is the
validation, named "val (test split)"; a `--limit`ed run tests on the matching share of the test split.

The split's expected counts are worked out by hand below; the end-to-end runs train 60 images of 16x16
for an epoch or two (tests/test_train.py's image folder).
"""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from test_train import _image_folder, history_values, the_run

from archdsl.errors import UsageError
from archdsl.training.holdout import (
    largest_val_split,
    matching_test_count,
    split_indices,
)

# 12 images: 6 of class 0, 3 of class 1, 3 of class 2
LABELS = np.array([0, 1, 0, 2, 0, 1, 0, 2, 0, 1, 0, 2])


def test_the_split_is_stratified_and_disjoint():
    """4 of 6:3:3 by share: 2 of class 0, 1 of class 1, 1 of class 2 (the stratified order's keys (i + .5) / n:
    class 0 at 1/12, 3/12, ..., classes 1 and 2 at 2/12, 6/12, ...; the first four are 0, 1, 2, 0)."""
    for seed in range(5):
        train, val = split_indices(LABELS, 4, seed)
        assert list(np.bincount(LABELS[val], minlength=3)) == [2, 1, 1]
        assert not set(train) & set(val) and sorted([*train, *val]) == list(range(12))


def test_the_split_is_fixed_by_the_seed():
    assert [list(part) for part in split_indices(LABELS, 4, 7)] == [list(part) for part in split_indices(LABELS, 4, 7)]
    held_out = {tuple(split_indices(LABELS, 4, seed)[1]) for seed in range(5)}
    assert len(held_out) > 1  # another seed, other images (each class's are drawn at random)
    # a larger N holds out the smaller N's images and more (a prefix of one seeded order)
    assert set(split_indices(LABELS, 4, 3)[1]) <= set(split_indices(LABELS, 8, 3)[1])


def test_impossible_val_splits_are_refused():
    # 4 of class 0, 2 of class 1: the order is 0, 1, 0, 0, 1, 0 (keys 1/8, 2/8, 3/8, 5/8, 6/8, 7/8), so
    # holding out 5 would take class 1's last image: at most 4
    labels = np.array([0, 0, 0, 0, 1, 1])
    assert largest_val_split(labels, 0) == 4
    assert len(split_indices(labels, 4, 0)[1]) == 4
    with pytest.raises(UsageError) as caught:
        split_indices(labels, 5, 0)
    assert caught.value.code == "E615" and caught.value.render() == (
        "error[E615]: val_split 5 (--val-split) would leave a class without training images (of 6 training images)"
        "\n  hint: hold out at most 4 (with this seed), or no val_split to validate on the test split")
    with pytest.raises(UsageError) as caught:
        split_indices(np.array([0, 1]), 1, 0)  # one image a class: holding any out leaves its class none
    assert "hint: there are too few training images to hold any out" in caught.value.render()


def test_the_test_share_matching_a_limit():
    y_test = np.tile(np.arange(10), 1000)  # CIFAR-10's test split in stratified order
    assert matching_test_count(y_test, 2000, 50000) == 400    # 2,000 / 50,000 of 10,000
    assert matching_test_count(y_test, 2001, 50000) == 401    # 400.2, rounded up
    assert matching_test_count(y_test, 10, 50000) == 10       # 2 by share, but one of each class
    assert matching_test_count(y_test, 50000, 50000) == 10000


# --- end to end ---------------------------------------------------------------------------------------

SPEC = """\
model tiny
input 16x16x3
classes 3

conv 3x3 8 same bn relu
gap
dense classes
softmax

train {
  batch 16
  epochs 2
}
"""


@pytest.mark.tf
def test_val_split_validates_on_held_out_images_and_tests_once(tmp_path, capsys):
    from archdsl.cli import main

    data = _image_folder(tmp_path / "shapes")  # 20 training and 8 test images a class
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    common = ["--data", str(data), "--data-dir", str(tmp_path / "cache"), "--verbose", "2"]
    assert main(["train", str(spec), "--val-split", "12", "--epochs", "3", *common, "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    run = the_run(tmp_path / "runs")
    state = json.loads((run / "checkpoint/state.json").read_text())
    assert state["settings"]["val_split"] == 12
    assert (state["data"]["train_images"], state["data"]["val_images"], state["data"]["test_images"]) == (48, 12, 24)
    for row in state["history"]:  # validated on the 12 held-out images: a multiple of 1/12
        assert row["val_accuracy"] * 12 == pytest.approx(round(row["val_accuracy"] * 12), abs=1e-4)
    test = state["test"]
    assert test["images"] == 24 and test["epoch"] == state["best"]["epoch"]
    # this seed's run is best at epoch 2 of 3, so best.keras's weights were loaded to score it (if another
    # Keras or TensorFlow changes that, choose a seed or epoch count where the best epoch is not the last)
    assert (test["epoch"], state["epoch"]) == (2, 3)
    assert test["accuracy"] * 24 == pytest.approx(round(test["accuracy"] * 24), abs=1e-4)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test_accuracy"] == test["accuracy"] and metrics["val_split"] == 12
    assert out.count("test accuracy") == 1 and f"test accuracy {test['accuracy']:.4f} of best.keras on 24" in out
    assert re.search(r"^epoch 1: val \(held out: 12 training images\) accuracy \d\.\d{4}$", out, re.MULTILINE)
    assert "best val (held out) accuracy" in out
    # `archdsl eval` scores best.keras on the test split: the accuracy the run recorded
    assert main(["eval", str(run), "--data-dir", str(tmp_path / "cache")]) == 0
    assert f"test accuracy {test['accuracy']:.4f} on 24 images" in capsys.readouterr().out
    assert main(["eval", str(run / "last.keras"), "--data", str(data), "--data-dir", str(tmp_path / "cache")]) == 0
    assert f"test accuracy {test['final_accuracy']:.4f} on 24 images" in capsys.readouterr().out

    # resumed after epoch 2, the run rebuilds the same split and ends as the uninterrupted one did
    copy = tmp_path / "copy" / run.name
    shutil.copytree(run, copy)
    shutil.copy(copy / "checkpoint/epoch-0002.json", copy / "checkpoint/state.json")
    assert main(["train", "--resume", str(copy), "--val-split", "10"]) == 2  # a resume keeps its val_split
    assert "error[E611]: --val-split 10 differs from the run's 12" in capsys.readouterr().err
    assert main(["train", "--resume", str(copy), "--val-split", "12", "--verbose", "0"]) == 0
    assert history_values(copy) == history_values(run)
    assert json.loads((copy / "checkpoint/state.json").read_text())["test"] == test


@pytest.mark.tf
def test_the_seeds_protocol_is_named_and_a_limit_tests_on_its_share(tmp_path, capsys):
    from archdsl.cli import main

    data = _image_folder(tmp_path / "shapes")
    spec = tmp_path / "tiny.arch"
    spec.write_text(SPEC)
    common = ["--data", str(data), "--data-dir", str(tmp_path / "cache"), "--verbose", "2"]
    # --limit 30 of 60 training images: 12 of the 24 test images (and every class has some: 4 each)
    assert main(["train", str(spec), "--limit", "30", *common, "--out", str(tmp_path / "runs")]) == 0
    out = capsys.readouterr().out
    assert "testing on 12 of the 24 test images, the share --limit 30 is of the 60 training images" in out
    assert re.search(r"^epoch 2: val \(test split\) accuracy \d\.\d{4}$", out, re.MULTILINE)
    assert re.search(r"^best val \(test split\) accuracy \d\.\d{4} at epoch \d, final val \(test split\)", out, re.MULTILINE)
    assert "test accuracy" not in out  # the test split was the validation: no second score
    run = the_run(tmp_path / "runs")
    state = json.loads((run / "checkpoint/state.json").read_text())
    assert state["settings"]["test_limit"] == 12 and state["settings"]["val_split"] is None
    assert state["data"]["test_images"] == 12 and "test" not in state
    for row in state["history"]:
        assert row["val_accuracy"] * 12 == pytest.approx(round(row["val_accuracy"] * 12), abs=1e-4)

    # a run from before val_split, set and recipe existed (no such fields) still resumes, the same way
    old = tmp_path / "old" / run.name
    shutil.copytree(run, old)
    state = json.loads((old / "checkpoint/epoch-0001.json").read_text())
    for key in ("val_split", "set", "recipe"):
        del state["settings"][key]
    del state["data"]["val_images"]
    (old / "checkpoint/state.json").write_text(json.dumps(state))
    resolved = json.loads((old / "resolved.json").read_text())
    del resolved["train"]["val_split"]
    (old / "resolved.json").write_text(json.dumps(resolved))
    assert main(["train", "--resume", str(old), "--verbose", "0"]) == 0
    assert "warning" not in capsys.readouterr().err
    assert history_values(old) == history_values(run)
