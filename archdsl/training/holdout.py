"""What a training run validates on, and the test images a `--limit`ed run scores.

Two protocols:
- `val_split N` (`--val-split N`): N training images, stratified by class and fixed by the seed, are held
  out of training; every epoch is validated on them and they choose best.keras. The test split is scored
  once, at the end. The split is a function of (seed, N, the training images), so a resumed run rebuilds it.
- no `val_split` (or 0): every epoch is validated on the test split, which also chooses best.keras, the
  seed's protocol, kept for comparison with it. Its accuracies are named "val (test split)".

    parts = split_dataset(dataset, val_split, seed)      # Parts: train, val and (held out) test arrays
    dataset, test_limit = matching_test_split(full, limit)   # --limit without --test-limit

The held-out images are a stratified prefix (`data.stratified_order`) of the training images in a
seeded random order: each class gives its share, as near as a whole number of images allows.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..errors import UsageError
from .data import Dataset, stratified_order

VAL_TEST_SPLIT = "val (test split)"  # how the seed's protocol names its validation, everywhere it is shown


def held_out_order(labels: np.ndarray, seed: int) -> np.ndarray:
    """The training images' indices in the order they are held out: the first N are the held-out N."""
    labels = np.asarray(labels, dtype=np.int64)
    shuffled = np.random.default_rng(seed).permutation(len(labels))
    return shuffled[stratified_order(labels[shuffled])]


def split_indices(labels: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training indices, held-out indices), each in ascending order, for `n` held-out images."""
    check_val_split(labels, n, seed)
    order = held_out_order(labels, seed)
    return np.sort(order[n:]), np.sort(order[:n])


def largest_val_split(labels: np.ndarray, seed: int) -> int:
    """The most images that can be held out while every class keeps a training image."""
    order = held_out_order(labels, seed)
    last = {}
    for position, label in enumerate(np.asarray(labels)[order]):
        last[int(label)] = position  # a class's last image in the order: hold out fewer to keep it
    return min(last.values(), default=0)


def check_val_split(labels: np.ndarray, n: int, seed: int) -> None:
    """UsageError (E615) unless `n` images can be held out, leaving every class a training image."""
    most = largest_val_split(labels, seed)
    if not 1 <= n <= most:
        images = f"{len(labels):,} training image{'s' if len(labels) != 1 else ''}"
        why = "must be at least 1" if n < 1 else f"would leave a class without training images (of {images})"
        hint = (f"hold out at most {most:,} (with this seed), or no val_split to validate on the test split"
                if most else "there are too few training images to hold any out: give no val_split")
        raise UsageError(f"val_split {n} (--val-split) {why}", hint=hint, code="E615")


@dataclass(frozen=True, eq=False)
class Parts:
    """The arrays a run trains on, validates on every epoch, and (held-out protocol only) tests on at the end."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray | None  # None: the test split is the validation (the seed's protocol)
    y_test: np.ndarray | None
    val_split: int | None

    @property
    def val_name(self) -> str:
        return f"val (held out: {len(self.y_val):,} training images)" if self.val_split else VAL_TEST_SPLIT


def split_dataset(dataset: Dataset, val_split: int | None, seed: int) -> Parts:
    """The run's parts of `dataset`: `val_split` training images held out, or (None or 0) none."""
    if not val_split:
        return Parts(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, None, None, None)
    train, val = split_indices(dataset.y_train, val_split, seed)
    return Parts(dataset.x_train[train], dataset.y_train[train], dataset.x_train[val], dataset.y_train[val],
                 dataset.x_test, dataset.y_test, val_split)


def matching_test_count(y_test: np.ndarray, limit: int, train_images: int) -> int:
    """How many test images (a prefix of the stratified test split) match `--limit limit` of `train_images`:
    the same share, rounded up, and at least enough that every class has one."""
    y_test = np.asarray(y_test)
    share = -(-limit * len(y_test) // train_images)  # ceil, in whole numbers
    first = {}
    for position, label in enumerate(y_test):
        first.setdefault(int(label), position)
    every_class = max(first.values(), default=-1) + 1
    return min(len(y_test), max(share, every_class))


def matching_test_split(full: Dataset, limit: int) -> tuple[Dataset, int | None]:
    """`full` (every image) cut as `--limit limit` cuts it, with the matching share of the test split;
    and the test limit that gives the same arrays (None: all of them). The cuts are prefixes of the
    stratified order, as `data.load_dataset`'s, so `load_dataset(..., limit, test_limit)` rebuilds them."""
    train_images = len(full.y_train)
    if limit >= train_images:
        return full, None
    count = matching_test_count(full.y_test, limit, train_images)
    cut = dataclasses.replace(full, x_train=full.x_train[:limit].copy(), y_train=full.y_train[:limit].copy(),
                              x_test=full.x_test[:count].copy(), y_test=full.y_test[:count].copy())
    return cut, (count if count < len(full.y_test) else None)


# --- in a training run (Keras handed in) ------------------------------------------------------------

def describe(parts: Parts) -> str:
    """The line a run prints before its first epoch: what it validates on and what chooses best.keras."""
    if parts.val_split:
        return (f"validating every epoch on {len(parts.y_val):,} held-out training images (--val-split), which "
                f"choose best.keras; training on the other {len(parts.y_train):,}; the {len(parts.y_test):,} test "
                "images are scored once, at the end")
    return (f"validating every epoch on the {len(parts.y_val):,} test images: {VAL_TEST_SPLIT}, the seed's "
            "protocol, which also chooses best.keras (--val-split N holds out training images instead)")


def epoch_line(keras, parts: Parts):
    """A callback that names each epoch's validation accuracy by what it was measured on."""

    class ValName(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if (logs or {}).get("val_accuracy") is not None:
                print(f"epoch {epoch + 1}: {parts.val_name} accuracy {float(logs['val_accuracy']):.4f}")

    return ValName()


def score_test(kmodel, run, state: dict, test_accuracy, images: int) -> None:
    """After the last epoch of a held-out run: the test accuracy of the final model (as last.keras holds it:
    `test_accuracy(ema=True)`) and of best.keras if another epoch's (its weights loaded into `kmodel`); the
    run reports best.keras's, since the held-out images chose it. Recorded in the state ("test") and
    metrics.json."""
    from .. import runs

    final = test_accuracy(True)
    best_epoch = state["best"]["epoch"]
    best = final
    if best_epoch is not None and best_epoch != state["epoch"]:
        kmodel.load_weights(run.best)
        best = test_accuracy(False)
    state["test"] = {"accuracy": best, "final_accuracy": final, "images": images,
                     "epoch": best_epoch if best_epoch is not None else state["epoch"]}
    runs.write_json(run.metrics, runs.summarize(state, run))
    runs.write_json(run.state, state)
