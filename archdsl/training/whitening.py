"""The kernel of a `whiten` conv: a patch-whitening transform of the training images.

A `conv KxK F ... whiten` reading the images gets its kernel from their KxK patches (as
the network sees them, after the input normalisation) instead of training it: the
eigenvectors of the patch covariance with the F/2 largest eigenvalues, each scaled by
1 / sqrt(eigenvalue + eps) and written twice, as v and -v (so that a ReLU/GELU after it
keeps both signs). Its outputs on the training patches then have zero mean (the bias,
if the layer has one, subtracts it) and unit variance along every kept eigenvector, and
are uncorrelated. The layer stays frozen: the whitening of airbench (Keller Jordan's
fast CIFAR-10 trainer), which makes the first epochs count for more.

numpy only; `archdsl train` calls `set_whitened_kernels` once, on a fresh run, before the first
step (a resumed run has the kernels in its checkpoint).
"""
from __future__ import annotations

import numpy as np

IMAGES = 5000            # training images the covariance is estimated from (the first ones)
EPS = 5e-4               # added to each eigenvalue, relative to their mean, so noise is not blown up
_CHUNK = 256             # images per pass: patches of all 5,000 at once would take ~0.5 GB


def patch_statistics(images: np.ndarray, kernel: tuple[int, int], dilation: tuple[int, int] = (1, 1)):
    """Mean (d,) and covariance (d, d) of all KxK patches of `images` (N, H, W, C), d = kh*kw*C.

    A patch is flattened in the order of a Keras kernel (kh, kw, C), so `patch @ kernel.reshape(d, F)`
    is what Conv2D computes at that position.
    """
    (kh, kw), (dh, dw) = kernel, dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    d = kh * kw * images.shape[-1]
    total, outer, count = np.zeros(d), np.zeros((d, d)), 0
    for start in range(0, len(images), _CHUNK):
        part = np.asarray(images[start:start + _CHUNK], dtype=np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(part, (span_h, span_w), axis=(1, 2))
        # (n, oh, ow, C, span_h, span_w) -> the dilated taps -> (n*oh*ow, kh, kw, C)
        taps = windows[..., ::dh, ::dw]
        patches = np.moveaxis(taps, 3, -1).reshape(-1, d)
        total += patches.sum(axis=0)
        outer += patches.T @ patches
        count += len(patches)
    if count == 0:
        raise ValueError(f"no {kh}x{kw} patches in images of shape {images.shape}")
    mean = total / count
    return mean, outer / count - np.outer(mean, mean)


def whitening_weights(images: np.ndarray, kernel: tuple[int, int], filters: int,
                      dilation: tuple[int, int] = (1, 1), eps: float = EPS) -> tuple[np.ndarray, np.ndarray]:
    """(kernel (kh, kw, C, filters), bias (filters,)) of the whitening conv; `filters` even, <= 2*kh*kw*C."""
    kh, kw = kernel
    d = kh * kw * images.shape[-1]
    if filters % 2 or not 0 < filters <= 2 * d:
        raise ValueError(f"whitening {kh}x{kw}x{images.shape[-1]} patches takes an even number of filters "
                         f"up to {2 * d}, not {filters}")
    mean, cov = patch_statistics(images, kernel, dilation)
    values, vectors = np.linalg.eigh(cov)                     # ascending
    values = np.clip(values, 0.0, None)                       # rounding can leave tiny negatives
    floor = eps * max(float(values.mean()), 1e-12)
    keep = np.argsort(values)[::-1][:filters // 2]
    half = vectors[:, keep] / np.sqrt(values[keep] + floor)   # (d, filters/2)
    weights = np.concatenate([half, -half], axis=1)
    bias = -(mean @ weights)
    return weights.reshape(kh, kw, images.shape[-1], filters).astype(np.float32), bias.astype(np.float32)


def set_whitened_kernels(model, keras_model, x_train: np.ndarray) -> None:
    """Give each `whiten` conv of `model` (the IR) its weights in `keras_model`, from the first
    IMAGES training images (uint8) passed through the model's input normalisation."""
    layers = [layer for layer in model.layers if layer.whiten]
    if not layers:
        return
    pixels = np.asarray(x_train[:IMAGES], np.float32)
    images = np.asarray(keras_model.get_layer("normalize")(pixels))
    for layer in layers:
        kernel, bias = whitening_weights(images, layer.kernel, layer.filters, layer.dilation)
        keras_model.get_layer(layer.name).set_weights([kernel, bias] if layer.use_bias else [kernel])
