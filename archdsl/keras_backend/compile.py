"""IR -> tf.keras functional model. The only module of the compiler that imports TensorFlow.

Each IR layer becomes its main Keras layer, named after the spec (`l03_sep64`), followed
by its post-ops in written order (`l03_sep64_drop`, `l03_sep64_bn`, `l03_sep64_relu`).
Graph edges become functional-API calls, so residual and parallel blocks need no
special case here beyond the merge layers.

Each op builds its own Keras layer (`Op.keras_layer`, `Op.keras_call`; this module hands it
`keras.layers`); an op built of several Keras layers (a `dw` with a stride like 2x1) names the
one that holds its output (`Op.keras_output`).

Batch norm: `archdsl train` builds it as `batchnorm.BatchNormalization` (`batchnorm="fused"`),
Keras' layer trained with TensorFlow's fused kernel, faster to train (docs/performance.md);
`compile`'s default is Keras' own layer.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the CLI's output

import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from ..ir import Model  # noqa: E402
from ..ops import op_of, post_name, post_step  # noqa: E402
from .batchnorm import BatchNormalization  # noqa: E402
from .memory import check_build  # noqa: E402


BATCHNORMS = ("keras", "fused")


def compile(model: Model, preprocess: "keras.layers.Layer | None" = None, batchnorm: str = "keras") -> keras.Model:
    """Build the Keras model of `model`; `preprocess` (e.g. input scaling) runs first if given.

    `batchnorm`: "keras" (Keras' BatchNormalization) or "fused" (this module's: the same
    function and weights, faster to train).
    """
    if batchnorm not in BATCHNORMS:
        raise ValueError(f"batchnorm must be one of {BATCHNORMS}, not {batchnorm!r}")
    check_build(model)  # before TensorFlow allocates what the machine does not have
    bn_class = BatchNormalization if batchnorm == "fused" else L.BatchNormalization
    inputs = keras.Input(shape=model.input_shape, name="input")
    tensors = {0: preprocess(inputs) if preprocess is not None else inputs}
    for layer in model.layers:
        x = [tensors[i] for i in layer.inputs]
        kind = op_of(layer)
        if not kind.implements("keras_layer"):
            raise UnsupportedOp(f"the Keras back-end cannot build op '{layer.op}' (layer {layer.index}: "
                                f"{layer.text})")
        y = kind.keras_call(layer, x if len(x) > 1 else x[0], L, bn_class)
        for n, post in enumerate(layer.post):
            y = post_step(post).post_keras_layer(post, post_name(layer, n), L, bn_class)(y)
        tensors[layer.index] = y
    return keras.Model(inputs, tensors[model.layers[-1].index], name=model.name)


def layer_outputs(model: Model) -> dict[int, str]:
    """IR layer index -> name of the Keras layer whose output is that IR layer's output."""
    names = {}
    for layer in model.layers:
        main = op_of(layer).keras_output(layer)
        names[layer.index] = post_name(layer, len(layer.post) - 1) if layer.post else main
    return names


def batch_norm_statistics(keras_model: keras.Model) -> list:
    """The moving mean and variance of every batch-norm layer, in layer order (not trainable)."""
    return [v for layer in keras_model.layers if isinstance(layer, L.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)]


class UnsupportedOp(NotImplementedError):
    """An op the Keras back-end has no layer for."""
