"""archdsl.training.pipeline: batches, one-hot labels, seeded and resumable augmentation, normalisation."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from archdsl.errors import DataError
from archdsl.ir import Augment
from archdsl.training.pipeline import (epoch_order, make_eval_dataset, make_train_dataset, normalizer,
                              steps_per_epoch)

pytestmark = pytest.mark.tf

N, H, W, C, K = 96, 12, 10, 3, 4


@pytest.fixture(scope="module")
def arrays():
    rng = np.random.default_rng(0)
    x = rng.integers(1, 256, (N, H, W, C), dtype=np.uint8)  # no zeros: cutout's zeros stand out
    y = rng.integers(0, K, N)
    return x, y


def collect(ds) -> tuple[np.ndarray, np.ndarray]:
    xs, ys = zip(*[(a.numpy(), b.numpy()) for a, b in ds])
    return np.concatenate(xs), np.concatenate(ys)


def train(arrays, augment=Augment(), **kwargs):
    x, y = arrays
    options = dict(batch=32, num_classes=K, augment=augment, seed=7) | kwargs
    return make_train_dataset(x, y, **options)


def test_shapes_dtypes_one_hot_and_partial_last_batch(arrays):
    x, y = arrays
    batches = list(train(arrays, Augment(flip=True, crop=2, cutout=3), batch=40))
    assert [int(b[0].shape[0]) for b in batches] == [40, 40, 16] == [40, 40, N - 80]
    assert len(batches) == steps_per_epoch(N, 40)
    images, labels = batches[0]
    assert images.dtype == tf.float32 and tuple(images.shape[1:]) == (H, W, C)
    assert labels.dtype == tf.float32 and tuple(labels.shape) == (40, K)
    all_labels = np.concatenate([b[1].numpy() for b in batches])
    assert (all_labels.sum(axis=1) == 1).all()
    order = epoch_order(N, 7, 0)
    np.testing.assert_array_equal(all_labels.argmax(axis=1), y[order])


def test_without_augmentation_images_are_the_input_in_epoch_order(arrays):
    x, y = arrays
    images, labels = collect(train(arrays, epoch=3))
    order = epoch_order(N, 7, 3)
    assert sorted(order.tolist()) == list(range(N))
    np.testing.assert_array_equal(images, x[order].astype(np.float32))
    np.testing.assert_array_equal(labels, np.eye(K, dtype=np.float32)[y[order]])
    images, _ = collect(train(arrays, shuffle=False))
    np.testing.assert_array_equal(images, x.astype(np.float32))


def test_same_seed_and_epoch_give_identical_batches_whatever_the_global_seed(arrays):
    augment = Augment(flip=True, crop=3, cutout=4)
    first = collect(train(arrays, augment, epoch=2))
    tf.random.set_seed(1234)
    try:
        second = collect(train(arrays, augment, epoch=2))
    finally:
        tf.random.set_seed(None)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other_epoch = collect(train(arrays, augment, epoch=3))
    other_seed = collect(train(arrays, augment, epoch=2, seed=8))
    assert not np.array_equal(epoch_order(N, 7, 2), epoch_order(N, 7, 3))
    assert not np.array_equal(first[1], other_epoch[1])
    assert not np.array_equal(first[0], other_seed[0])


def test_resuming_at_epoch_k_sees_what_an_uninterrupted_run_saw(arrays):
    augment = Augment(flip=True, crop=2, crop_mode="zero", cutout=5)
    whole_run = list(train(arrays, augment, epoch=0, epochs=3))
    per_epoch = steps_per_epoch(N, 32)
    assert len(whole_run) == 3 * per_epoch
    resumed = list(train(arrays, augment, epoch=2))
    for (a, la), (b, lb) in zip(whole_run[2 * per_epoch:], resumed):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
        np.testing.assert_array_equal(la.numpy(), lb.numpy())


def test_flip_mirrors_about_half_of_the_images(arrays):
    x, _ = arrays
    images, _ = collect(train(arrays, Augment(flip=True), shuffle=False))
    same = [np.array_equal(out, src) for out, src in zip(images, x)]
    mirrored = [np.array_equal(out, src[:, ::-1]) for out, src in zip(images, x)]
    assert all(s != m for s, m in zip(same, mirrored)), "each image is either kept or mirrored"
    assert 0.3 < np.mean(mirrored) < 0.7


def test_alternate_flip_mirrors_each_image_every_other_epoch(arrays):
    x, _ = arrays
    batches = list(train(arrays, Augment(flip=True, flip_mode="alternate"), epochs=4))
    per_epoch = steps_per_epoch(N, 32)
    mirrored_by_epoch = []
    for e in range(4):
        images = np.concatenate([b[0].numpy() for b in batches[e * per_epoch:(e + 1) * per_epoch]])
        sources = x[epoch_order(N, 7, e)]
        kept = np.array([np.array_equal(out, src) for out, src in zip(images, sources)])
        mirrored = np.array([np.array_equal(out, src[:, ::-1]) for out, src in zip(images, sources)])
        assert (kept != mirrored).all(), "each image is either kept or mirrored"
        mirrored_by_epoch.append(mirrored[np.argsort(epoch_order(N, 7, e))])  # in image order
    first, second, third, fourth = mirrored_by_epoch
    assert 0.3 < first.mean() < 0.7
    np.testing.assert_array_equal(second, ~first)
    np.testing.assert_array_equal(third, first)
    np.testing.assert_array_equal(fourth, ~first)
    # a resumed run (from epoch 3) mirrors the same images in epoch 3
    resumed = np.concatenate([b[0].numpy() for b in train(arrays, Augment(flip=True, flip_mode="alternate"), epoch=3)])
    np.testing.assert_array_equal(resumed, np.concatenate([b[0].numpy() for b in batches[3 * per_epoch:]]))


@pytest.mark.parametrize("mode", ["reflect", "zero"])
def test_crop_is_a_window_of_the_padded_image(arrays, mode):
    x, _ = arrays
    pad = 3
    images, _ = collect(train(arrays, Augment(crop=pad, crop_mode=mode), shuffle=False))
    assert images.shape == x.shape
    offsets = set()
    for out, src in zip(images, x):
        padded = np.pad(src, [(pad, pad), (pad, pad), (0, 0)], mode="reflect" if mode == "reflect" else "constant")
        found = [(i, j) for i in range(2 * pad + 1) for j in range(2 * pad + 1)
                 if np.array_equal(padded[i:i + H, j:j + W], out)]
        assert found, "every crop is a window of the numpy-padded image"
        offsets.add(found[0])
    assert len(offsets) > 20, "offsets vary per image"


def test_cutout_zeroes_one_square_per_image_clipped_at_the_border(arrays):
    x, _ = arrays
    size = 4
    images, _ = collect(train(arrays, Augment(cutout=size), shuffle=False))
    for out, src in zip(images, x):
        zero = (out == 0).all(axis=2)
        np.testing.assert_array_equal(out[~zero], src[~zero])
        rows, cols = np.nonzero(zero.any(axis=1))[0], np.nonzero(zero.any(axis=0))[0]
        assert zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all(), "one filled rectangle"
        assert zero.sum() == len(rows) * len(cols)
        for span, limit in ((rows, H), (cols, W)):
            assert 1 <= len(span) <= size
            if span.min() > 0 and span.max() < limit - 1:
                assert len(span) == size, "an unclipped square is size x size"


def test_eval_dataset_is_in_order_and_not_augmented(arrays):
    x, y = arrays
    ds = make_eval_dataset(x, y, batch=50, num_classes=K)
    images, labels = collect(ds)
    np.testing.assert_array_equal(images, x.astype(np.float32))
    np.testing.assert_array_equal(labels, np.eye(K, dtype=np.float32)[y])
    assert images.dtype == np.float32


def test_bad_inputs(arrays):
    x, y = arrays
    with pytest.raises(DataError) as info:
        make_eval_dataset(x, y, batch=8, num_classes=2)
    assert "the model has 2 classes" in info.value.message and "classes" in info.value.hint
    with pytest.raises(DataError) as info:
        make_train_dataset(x, y, batch=8, num_classes=K, augment=Augment(crop=W), seed=0)
    assert "crop_mode zero" in info.value.hint
    make_train_dataset(x, y, batch=8, num_classes=K, augment=Augment(crop=W, crop_mode="zero"), seed=0)
    with pytest.raises(ValueError):
        make_eval_dataset(x.astype(np.float32), y, batch=8, num_classes=K)


def test_normalizers():
    rng = np.random.default_rng(1)
    x = np.stack([rng.integers(0, 256, (64, 8, 8)), rng.integers(100, 120, (64, 8, 8)),
                  np.full((64, 8, 8), 42)], axis=-1).astype(np.uint8)
    raw = x.astype(np.float32)
    np.testing.assert_allclose(normalizer("scale", x)(raw).numpy(), raw / 255, rtol=1e-6)
    standard = normalizer("standard", x)
    out = standard(raw).numpy()
    np.testing.assert_allclose(out[..., :2].mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(out[..., :2].std(axis=(0, 1, 2)), 1, atol=1e-3)
    np.testing.assert_array_equal(out[..., 2], 0)  # a constant channel is centred, not blown up
    assert standard.name == "normalize"
    with pytest.raises(ValueError):
        normalizer("minmax", x)
