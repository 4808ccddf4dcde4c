"""`conv ... whiten`: the kernel whitens the images' patches, stays frozen, and survives a resume.

Independent truths: the covariance of patches gathered by plain Python loops, and the outputs of
Keras' own Conv2D with the computed kernel (decorrelated, unit variance, zero mean).
"""
from __future__ import annotations

import shutil

import numpy as np
import pytest

import archdsl
from archdsl.training.whitening import patch_statistics, whitening_weights

from test_differential import check_against_keras
from test_train import _image_folder, keras_arrays, the_run, write_spec


def _correlated_images(n=64, size=12, seed=0) -> np.ndarray:
    """Smooth, channel-mixed noise: neighbouring pixels and channels strongly correlated, as in photos."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size + 2, size + 2, 3))
    x = (x[:, :-2, :-2] + x[:, 1:-1, 1:-1] + x[:, 2:, 2:]) / 3  # blur along the diagonal
    mix = np.array([[1.0, 0.8, 0.6], [0.0, 0.5, 0.3], [0.0, 0.0, 0.2]])
    return (x @ mix + 0.3).astype(np.float32)


def _patches_by_loops(images, kh, kw, dh=1, dw=1) -> np.ndarray:
    rows = []
    for img in images:
        for i in range(img.shape[0] - dh * (kh - 1)):
            for j in range(img.shape[1] - dw * (kw - 1)):
                rows.append([img[i + a * dh, j + b * dw, c] for a in range(kh) for b in range(kw)
                             for c in range(img.shape[2])])
    return np.array(rows, dtype=np.float64)


@pytest.mark.parametrize("kernel, dilation", [((2, 2), (1, 1)), ((3, 2), (1, 1)), ((2, 2), (2, 1))])
def test_patch_statistics_match_loops(kernel, dilation):
    images = _correlated_images(n=6)
    mean, cov = patch_statistics(images, kernel, dilation)
    patches = _patches_by_loops(images, *kernel, *dilation)
    np.testing.assert_allclose(mean, patches.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(cov, np.cov(patches, rowvar=False, bias=True), atol=1e-9)


@pytest.mark.tf
@pytest.mark.parametrize("filters, dilation", [(24, (1, 1)), (8, (1, 1)), (24, (2, 2))])
def test_keras_conv_with_the_kernel_whitens_the_patches(filters, dilation):
    import keras

    images = _correlated_images()
    kernel, bias = whitening_weights(images, (2, 2), filters, dilation, eps=0.0)
    conv = keras.layers.Conv2D(filters, 2, dilation_rate=dilation, padding="valid")
    conv.build((None, *images.shape[1:]))
    conv.set_weights([kernel, bias])
    out = np.asarray(conv(images)).reshape(-1, filters).astype(np.float64)
    half = filters // 2
    np.testing.assert_allclose(out[:, half:], -out[:, :half], atol=1e-5)     # +/- pairs
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-3)               # the bias centres them
    np.testing.assert_allclose(np.cov(out[:, :half], rowvar=False, bias=True), np.eye(half), atol=2e-3)
    # the kept directions are the patches' top eigenvectors: the variance the kernel keeps is theirs
    values = np.linalg.eigvalsh(np.cov(_patches_by_loops(images, 2, 2, *dilation), rowvar=False, bias=True))
    directions = kernel.reshape(-1, filters)[:, :half]
    directions = directions / np.linalg.norm(directions, axis=0)
    kept = np.trace(directions.T @ patch_statistics(images, (2, 2), dilation)[1] @ directions)
    assert kept == pytest.approx(values[::-1][:half].sum(), rel=1e-6)


def test_eps_damps_the_weakest_directions_only():
    images = _correlated_images()
    sharp, _ = whitening_weights(images, (2, 2), 24, eps=0.0)
    damped, _ = whitening_weights(images, (2, 2), 24)
    norms = np.linalg.norm(damped.reshape(12, 24), axis=0) / np.linalg.norm(sharp.reshape(12, 24), axis=0)
    assert norms[0] == pytest.approx(1.0, abs=1e-3)   # the strongest direction is left as it is
    assert norms[11] < norms[0]                        # the weakest is scaled down


def test_filters_must_pair_up():
    with pytest.raises(ValueError, match="even number of filters up to 24"):
        whitening_weights(_correlated_images(n=2), (2, 2), 26)


WHITEN_SPEC = """\
model whitened
input 16x16x3
classes 3

conv 2x2 24 valid whiten bias bn gelu
sep 3x3 16 same bn relu
gap
dense classes
softmax

train {
  optimizer sgd
  lr 0.05
  batch 16
  epochs 2
}
"""


def test_whitened_weights_are_not_trainable_in_the_table():
    table = archdsl.analyze(archdsl.loads(WHITEN_SPEC, "w.arch"))
    first = table.rows[0]
    assert first.params == 2 * 2 * 3 * 24 + 24 + 4 * 24       # kernel, bias, batch norm
    assert first.trainable_params == 2 * 24                   # batch norm's gamma and beta only


@pytest.mark.tf
def test_whitened_specs_agree_with_keras():
    check_against_keras(WHITEN_SPEC)
    check_against_keras(WHITEN_SPEC.replace("conv 2x2 24 valid whiten bias", "conv 3x3 8 same d2 whiten"))


@pytest.mark.tf
def test_train_sets_the_kernel_from_the_data_keeps_it_and_resumes(tmp_path):
    import keras
    from PIL import Image

    from archdsl.cli import main

    data = _image_folder(tmp_path / "shapes")
    spec = write_spec(tmp_path, WHITEN_SPEC, "whitened.arch")
    common = ["--data", str(data), "--data-dir", str(tmp_path / "cache"), "--verbose", "0"]
    assert main(["train", str(spec), *common, "--out", str(tmp_path / "runs")]) == 0
    run = the_run(tmp_path / "runs", "whitened")

    # the kernel is the whitening of the training images (x/255, the spec's default normalisation)
    # and training left it alone
    images = np.stack([np.asarray(Image.open(p).convert("RGB"), np.float32) / 255
                       for p in sorted((data / "train").glob("*/*.png"))])
    kernel, bias = whitening_weights(images, (2, 2), 24)
    trained = keras.models.load_model(run / "last.keras")
    got_kernel, got_bias = trained.get_layer("l01_conv24").get_weights()
    np.testing.assert_allclose(got_kernel, kernel, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_bias, bias, rtol=1e-4, atol=1e-5)
    assert not trained.get_layer("l01_conv24").trainable
    assert len(trained.trainable_weights) == len(trained.weights) - 2 - 2 * 2  # all but it and BN's statistics

    # a resume from epoch 1 loads the kernel from its checkpoint and ends where the run ended
    copy = tmp_path / "copy" / run.name
    shutil.copytree(run, copy)
    shutil.copy(copy / "checkpoint/epoch-0001.json", copy / "checkpoint/state.json")
    assert main(["train", "--resume", str(copy), "--verbose", "0"]) == 0
    assert keras_arrays(copy / "last.keras") == keras_arrays(run / "last.keras")
