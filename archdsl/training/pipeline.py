"""tf.data input pipelines from uint8 arrays, with batched, seeded and resumable augmentation.

What the model sees. Images come out as float32 holding the raw pixel values 0..255
(exact integers); normalisation is a layer inside the model (`normalizer`), so a saved
model takes raw pixels. Labels come out one-hot float32, for categorical cross-entropy
with optional label smoothing.

Randomness. Every random choice is a pure function of (seed, epoch, batch index), made
with stateless ops (`tf.random.stateless_*`), so it depends on nothing else: not on the
global TF seed, not on how many epochs ran before in this process, not on thread timing.

    epoch key    = fold_in([seed, SALT], epoch)
    order        = argsort(stateless_uniform_int64(n, fold_in(epoch key, 0)))   # `epoch_order`
    batch key    = fold_in(fold_in(epoch key, 1), batch index)
    crop, flip, cutout keys = stateless_split(batch key, 3)
    alternating flip: image i mirrored in epoch e iff (bit i of fold_in([seed, SALT], -1)) xor (e odd)

So training resumed at epoch k, with `make_train_dataset(..., epoch=k)`, sees exactly the
batches an uninterrupted run saw at epoch k (with the same TensorFlow version: stateless
ops promise equal output for equal seeds within a version, not across). The shuffle is a permutation of the whole
training set (what a shuffle buffer of the dataset's size gives), drawn per epoch; the
batches are gathered from it with vectorised ops instead of a per-image shuffle buffer,
which is both faster and independent of TF's global seed. The trainer either builds one
dataset per epoch (`epoch=e`, cheap: nothing is copied but the arrays into TF once, and
passing tf.Tensors avoids even that) or one dataset for the whole run (`epoch=k,
epochs=n-k`, then `fit(..., steps_per_epoch=steps_per_epoch(n_images, batch))`). An epoch
here is one pass over the images; a spec's `passes N` makes the trainer's epoch e the N
passes eN .. eN+N-1.

Augmentation runs on whole batches (after `batch`, in parallel, deterministic order):
pad-and-crop, then horizontal flip, then cutout.
- crop: pad by `crop` pixels (reflect, as numpy's "reflect", or zero), then take an
  image-sized window at a random offset in [0, 2*crop] on each axis, per image.
- flip: each image mirrored left-right with probability 1/2. With flip_mode "alternate"
  (airbench's derandomised flip, Jordan 2024) each image is mirrored in every other epoch:
  a random half in epoch 0, the other half in epoch 1, and so on, so two consecutive epochs
  show every image both ways.
- cutout: a `cutout`x`cutout` square per image, centred on a uniformly random pixel and
  clipped at the border (DeVries & Taylor, 2017), is set to 0 — black in raw pixels, so
  0 after "scale" normalisation and -mean/std after "standard".
The last, partial batch of an epoch is kept: every image is seen once per epoch.

Replicas (tf.distribute). With `replicas=R`, `batch` is the global batch of all R replicas
and the dataset holds the shares of the replicas `replica_ids` (default: all), one element
per replica and global batch, in that order: replica r gets rows r, r+R, r+2R, ... of the
global batch. The random draws of a batch's augmentation are made for the whole global
batch and the share's rows taken from them, so the replicas together train, step by step,
on exactly the images and augmentations of a one-replica pipeline with the same global
batch, and each worker builds only its own replicas' images. An epoch's last batch is left
out when it has fewer images than replicas (some replica would get none): at most R-1 images
an epoch, different ones each epoch. Evaluation keeps every image; a replica's share of the
last batch may then be empty.
"""
from __future__ import annotations

import math
import os

import keras
import numpy as np
import tensorflow as tf

from archdsl.errors import DataError
from archdsl.ir import Augment

AUTOTUNE = tf.data.AUTOTUNE
# How batches are made: "sequential" (one map thread, 2 batches prefetched, tf.data's autotuner
# off) or "autotune" (parallel map and prefetch sized by tf.data). None picks by core count:
# on a small CPU the autotuner's threads compete with the training step for the cores and cost
# about 12% of training speed, while one thread makes batches ~600x faster than the step
# consumes them (benchmarks/bench_training.py, docs/performance.md).
BATCHING: str | None = None
SMALL_CPU = 4
SALT = 0x61726368  # "arch": keeps our streams apart from other users of the same seed
STD_FLOOR = 1.0    # raw pixel units: a constant channel is centred, not blown up


def make_train_dataset(x_uint8, y, *, batch: int, num_classes: int, augment: Augment, seed: int,
                       epoch: int = 0, epochs: int = 1, shuffle: bool = True, replicas: int = 1,
                       replica_ids: list[int] | None = None) -> tf.data.Dataset:
    """Batches of `epochs` consecutive epochs starting at `epoch`: (float32 images, one-hot labels).

    Each epoch's order and augmentation depend only on (seed, that epoch); see the module
    docstring. `shuffle=False` keeps the arrays' order (still augmented). With `replicas`
    > 1, `batch` is global and the elements are the shares of `replica_ids` (module docstring).
    """
    x, y_t = _tensors(x_uint8, y, num_classes, batch)
    if epoch < 0 or epochs < 1:
        raise ValueError(f"need epoch >= 0 and epochs >= 1, got epoch={epoch}, epochs={epochs}")
    _check_augment(augment, tuple(x.shape[1:3]))
    n = int(x.shape[0])
    ids = _replica_ids(replicas, replica_ids)
    used = min(n, steps_per_epoch(n, batch, replicas) * batch)

    def one_epoch(e):
        order = _order(n, seed, e) if shuffle else tf.range(n, dtype=tf.int64)
        if used < n:
            order = order[:used]
        batches = tf.data.Dataset.from_tensor_slices(order).batch(batch).enumerate()
        if ids is None:
            return batches.map(lambda i, idx: (e, i, idx))
        return batches.flat_map(lambda i, idx: ids.map(lambda r: (e, i, idx, r)))

    flip_bits = _alternate_flip_bits(n, seed) if augment.flip and augment.flip_mode == "alternate" else None

    def load(e, i, idx, r=None):
        key = _batch_key(seed, e, i)
        rows = None
        if r is not None:  # this replica's rows of the global batch, augmented as in the whole batch
            size = tf.size(idx, out_type=tf.int64)
            share = _share(r, size, replicas)
            idx = tf.gather(idx, share)
            rows = (share, size)
        mirrored = None  # None: a random flip, if any
        if flip_bits is not None:
            mirrored = tf.not_equal(tf.gather(flip_bits, idx), tf.equal(e % 2, 1))[:, None]
        images = augment_batch(tf.cast(tf.gather(x, idx), tf.float32), augment, key, rows=rows, mirrored=mirrored)
        return images, tf.one_hot(tf.gather(y_t, idx), num_classes, dtype=tf.float32)

    return _batches(tf.data.Dataset.range(epoch, epoch + epochs).flat_map(one_epoch), load)


def make_eval_dataset(x_uint8, y, *, batch: int, num_classes: int, replicas: int = 1,
                      replica_ids: list[int] | None = None) -> tf.data.Dataset:
    """Batches in the arrays' order, not augmented: (float32 images, one-hot labels).

    With `replicas` > 1, `batch` is global and the elements are the shares of `replica_ids`.
    """
    x, y_t = _tensors(x_uint8, y, num_classes, batch)
    ids = _replica_ids(replicas, replica_ids)

    def load(idx, r=None):
        if r is not None:
            idx = tf.gather(idx, _share(r, tf.size(idx, out_type=tf.int64), replicas))
        return (tf.cast(tf.gather(x, idx), tf.float32),
                tf.one_hot(tf.gather(y_t, idx), num_classes, dtype=tf.float32))

    ds = tf.data.Dataset.range(int(x.shape[0])).batch(batch)
    if ids is not None:
        ds = ds.flat_map(lambda idx: ids.map(lambda r: (idx, r)))
    return _batches(ds, load)


def batching() -> str:
    """The BATCHING in effect: as set, or by this machine's core count."""
    if BATCHING is not None:
        return BATCHING
    return "sequential" if (os.cpu_count() or 1) <= SMALL_CPU else "autotune"


def _batches(ds: tf.data.Dataset, load) -> tf.data.Dataset:
    """`ds.map(load)`, prefetched, in order: see BATCHING."""
    if batching() == "autotune":
        return ds.map(load, num_parallel_calls=AUTOTUNE, deterministic=True).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(load).prefetch(2).with_options(options)


def steps_per_epoch(n_images: int, batch: int, replicas: int = 1) -> int:
    """Batches in one training epoch: the last one may be partial, but not smaller than `replicas`."""
    if 0 < n_images % batch < replicas:
        return n_images // batch
    return math.ceil(n_images / batch)


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """The order in which `make_train_dataset` visits n images in `epoch` (shuffle=True)."""
    return _order(n, seed, tf.constant(epoch, tf.int64)).numpy()


def augment_batch(images: tf.Tensor, augment: Augment, key: tf.Tensor, rows=None, mirrored=None) -> tf.Tensor:
    """Augment a float32 batch (B, H, W, C) as `augment` says, with randomness from `key` (int64 [2]).

    Each augmentation draws from its own sub-key, so turning one on or off leaves the
    others' draws unchanged. `rows=(rows, size)`: the images are these rows of a batch of
    `size` images, and get the draws they would get in that whole batch. `mirrored` (bool
    (B, 1)), if given, says which images to flip instead of a random draw.
    """
    crop_key, flip_key, cutout_key = tf.unstack(tf.random.experimental.stateless_split(key, 3))
    if augment.crop or augment.flip:
        if augment.flip and mirrored is None:
            mirrored = _uniform(tf.shape(images)[0], 1, flip_key, rows) < 0.5
        images = _crop_and_flip(images, augment.crop, augment.crop_mode, mirrored, crop_key, rows)
    if augment.cutout:
        images = _cutout(images, augment.cutout, cutout_key, rows)
    return images


def _uniform(b, width: int, key, rows, **kwargs) -> tf.Tensor:
    """stateless_uniform([b, width]); with `rows=(rows, size)` those rows of the draws for `size` images."""
    if rows is None:
        return tf.random.stateless_uniform([b, width], key, **kwargs)
    return tf.gather(tf.random.stateless_uniform(tf.stack([rows[1], width]), key, **kwargs), rows[0])


def _crop_and_flip(images, pad: int, mode: str, mirrored, crop_key, draw_rows=None) -> tf.Tensor:
    """Per image: pad by `pad`, take the window at a random offset, mirror it if `mirrored` (B, 1) says so
    (None: no flip); one gather."""
    h, w, c = images.shape[1], images.shape[2], images.shape[3]
    b = tf.shape(images)[0]
    if pad:
        images = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]],
                        mode="REFLECT" if mode == "reflect" else "CONSTANT")
        offsets = _uniform(b, 2, crop_key, draw_rows, minval=0, maxval=2 * pad + 1, dtype=tf.int32)
    else:
        offsets = tf.zeros([b, 2], tf.int32)
    hp, wp = h + 2 * pad, w + 2 * pad
    rows = offsets[:, :1] + tf.range(h)[None, :] + tf.range(b)[:, None] * hp  # (B, H) rows of the batch
    cols = tf.range(w)[None, :]
    if mirrored is not None:
        cols = tf.where(mirrored, w - 1 - cols, cols)
    cols = offsets[:, 1:] + cols                                              # (B, W)
    pixels = rows[:, :, None] * wp + cols[:, None, :]                         # (B, H, W)
    return tf.gather(tf.reshape(images, [-1, c]), pixels)


def _cutout(images: tf.Tensor, size: int, key: tf.Tensor, draw_rows=None) -> tf.Tensor:
    """Zero a size x size square per image, centred on a random pixel, clipped at the border."""
    b, h, w = tf.shape(images)[0], images.shape[1], images.shape[2]
    row_key, col_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
    top = _uniform(b, 1, row_key, draw_rows, minval=0, maxval=h, dtype=tf.int32) - size // 2
    left = _uniform(b, 1, col_key, draw_rows, minval=0, maxval=w, dtype=tf.int32) - size // 2
    rows, cols = tf.range(h)[None, :], tf.range(w)[None, :]
    in_rows = tf.cast((rows >= top) & (rows < top + size), images.dtype)    # (B, H)
    in_cols = tf.cast((cols >= left) & (cols < left + size), images.dtype)  # (B, W)
    return images * (1 - in_rows[:, :, None, None] * in_cols[:, None, :, None])


def normalizer(kind: str, x_train_uint8, name: str = "normalize") -> keras.layers.Layer:
    """The model's first layer, mapping raw pixels 0..255 to what the network trains on.

    "scale": x / 255. "standard": (x - mean) / std per channel, from the training images
    (std at least STD_FLOOR pixel levels, so a constant channel does not blow up).
    """
    if kind == "scale":
        return keras.layers.Rescaling(1 / 255, name=name)
    if kind == "standard":
        mean, var = channel_stats(np.asarray(x_train_uint8))
        return keras.layers.Normalization(axis=-1, mean=mean.tolist(),
                                          variance=np.maximum(var, STD_FLOOR ** 2).tolist(), name=name)
    raise ValueError(f"unknown normalisation {kind!r}; expected 'scale' or 'standard'")


def channel_stats(x_uint8: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean and variance of uint8 images (N, H, W, C), in float64.

    Counts pixel values chunk by chunk, so memory stays small whatever N is.
    """
    if x_uint8.dtype != np.uint8 or x_uint8.ndim != 4 or len(x_uint8) == 0:
        raise ValueError(f"expected uint8 images (N, H, W, C), got {x_uint8.dtype} {x_uint8.shape}")
    channels = x_uint8.shape[-1]
    counts = np.zeros((channels, 256), dtype=np.int64)
    for start in range(0, len(x_uint8), chunk):
        part = x_uint8[start:start + chunk]
        for c in range(channels):
            counts[c] += np.bincount(part[..., c].ravel(), minlength=256)
    values = np.arange(256, dtype=np.float64)
    total = counts.sum(axis=1)
    mean = counts @ values / total
    var = (counts * (values[None, :] - mean[:, None]) ** 2).sum(axis=1) / total
    return mean, var


# --- helpers ---------------------------------------------------------------------------------

def _epoch_key(seed: int, epoch) -> tf.Tensor:
    base = tf.constant([seed, SALT], dtype=tf.int64)
    return tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64))


def _order(n: int, seed: int, epoch) -> tf.Tensor:
    key = tf.random.experimental.stateless_fold_in(_epoch_key(seed, epoch), 0)
    draws = tf.random.stateless_uniform([n], key, minval=None, maxval=None, dtype=tf.int64)
    return tf.cast(tf.argsort(draws, stable=True), tf.int64)


def _alternate_flip_bits(n: int, seed: int) -> tf.Tensor:
    """Which of n images an alternating flip mirrors in even epochs (bool (n,)); a key no epoch uses."""
    key = _epoch_key(seed, -1)
    return tf.random.stateless_uniform([n], key) < 0.5


def _batch_key(seed: int, epoch, batch_index) -> tf.Tensor:
    key = tf.random.experimental.stateless_fold_in(_epoch_key(seed, epoch), 1)
    return tf.random.experimental.stateless_fold_in(key, tf.cast(batch_index, tf.int64))


def _replica_ids(replicas: int, replica_ids) -> tf.data.Dataset | None:
    """The replica ids to make shares for, as a dataset to map over; None for one replica."""
    ids = list(range(replicas)) if replica_ids is None else [int(r) for r in replica_ids]
    if replicas < 1 or not ids or any(not 0 <= r < replicas for r in ids):
        raise ValueError(f"need replica ids in 0..{replicas - 1}, got {ids}")
    return tf.data.Dataset.from_tensor_slices(tf.constant(ids, tf.int64)) if replicas > 1 else None


def _share(r, size, replicas: int) -> tf.Tensor:
    """Replica r's rows of a global batch of `size` rows: r, r+R, r+2R, ... (none if size <= r)."""
    return tf.range(r, tf.maximum(r, size), replicas)


def _tensors(x_uint8, y, num_classes: int, batch: int) -> tuple[tf.Tensor, tf.Tensor]:
    x = tf.convert_to_tensor(x_uint8)
    labels = np.asarray(y).reshape(-1)
    if x.dtype != tf.uint8 or x.shape.rank != 4 or x.shape[0] == 0:
        raise ValueError(f"expected uint8 images (N, H, W, C), N >= 1, got {x.dtype.name} {x.shape}")
    if labels.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} images but {labels.shape[0]} labels")
    if batch < 1 or num_classes < 1:
        raise ValueError(f"need batch >= 1 and num_classes >= 1, got {batch}, {num_classes}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"labels run from {labels.min()} to {labels.max()} but the model has "
                        f"{num_classes} classes", hint=f"write `classes {labels.max() + 1}` in the spec")
    return x, tf.constant(labels.astype(np.int64))


def _check_augment(augment: Augment, size: tuple[int, int]) -> None:
    if augment.crop and augment.crop_mode == "reflect" and augment.crop >= min(size):
        raise DataError(f"crop {augment.crop} with reflect padding needs images larger than "
                        f"{augment.crop} pixels, these are {size[0]}x{size[1]}",
                        hint=f"use a crop below {min(size)}, or crop_mode zero")
