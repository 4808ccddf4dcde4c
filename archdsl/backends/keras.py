"""IR -> tf.keras functional model. The only module of the compiler that imports TensorFlow.

Each IR layer becomes its main Keras layer, named after the spec (`l03_sep64`), followed
by its post-ops in written order (`l03_sep64_drop`, `l03_sep64_bn`, `l03_sep64_relu`).
Graph edges become functional-API calls, so residual and parallel blocks need no
special case here beyond the merge layers.

One exception to "one main layer": TF's depthwise kernels (used by `dw` and by the first
half of `sep`) take only equal strides on both axes, so a `dw`/`sep` with a stride like
2x1 is built as `l05_dw_pad` (the zeros SAME would add, if any), `l05_dw` at stride 1
with valid padding, and `l05_dw_stride` (a 1x1 pool keeping every s-th row and column):
the same function, and the same weights in the layer named after the spec.

Batch norm: `archdsl train` builds it as this module's `BatchNormalization` (`batchnorm="fused"`),
Keras' layer trained with TensorFlow's fused kernel, faster to train (docs/performance.md);
`compile`'s default is Keras' own layer.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's start-up chatter out of the CLI's output

import keras  # noqa: E402
from keras import layers as L  # noqa: E402

from .. import geometry  # noqa: E402
from ..ir import Layer, Model  # noqa: E402


BATCHNORMS = ("keras", "fused")


def compile(model: Model, preprocess: "keras.layers.Layer | None" = None, batchnorm: str = "keras") -> keras.Model:
    """Build the Keras model of `model`; `preprocess` (e.g. input scaling) runs first if given.

    `batchnorm`: "keras" (Keras' BatchNormalization) or "fused" (this module's: the same
    function and weights, faster to train).
    """
    if batchnorm not in BATCHNORMS:
        raise ValueError(f"batchnorm must be one of {BATCHNORMS}, not {batchnorm!r}")
    bn_class = BatchNormalization if batchnorm == "fused" else L.BatchNormalization
    inputs = keras.Input(shape=model.input_shape, name="input")
    tensors = {0: preprocess(inputs) if preprocess is not None else inputs}
    for layer in model.layers:
        x = [tensors[i] for i in layer.inputs]
        y = _call_main_layer(layer, x if len(x) > 1 else x[0], bn_class)
        for n, post in enumerate(layer.post):
            y = _post_layer(layer, post, n, bn_class)(y)
        tensors[layer.index] = y
    return keras.Model(inputs, tensors[model.layers[-1].index], name=model.name)


def layer_outputs(model: Model) -> dict[int, str]:
    """IR layer index -> name of the Keras layer whose output is that IR layer's output."""
    names = {}
    for layer in model.layers:
        main = f"{layer.name}_stride" if _strides_by_hand(layer) else layer.name
        names[layer.index] = _post_name(layer, layer.post[-1], len(layer.post) - 1) if layer.post else main
    return names


def batch_norm_statistics(keras_model: keras.Model) -> list:
    """The moving mean and variance of every batch-norm layer, in layer order (not trainable)."""
    return [v for layer in keras_model.layers if isinstance(layer, L.BatchNormalization)
            for v in (layer.moving_mean, layer.moving_variance)]


def _strides_by_hand(layer: Layer) -> bool:
    """TF's depthwise kernels (dw, and sep's first half) run only with equal strides on both axes."""
    return layer.op in ("dw", "sep") and layer.stride[0] != layer.stride[1]


def _call_main_layer(layer: Layer, x, bn_class):
    if not _strides_by_hand(layer):
        return _main_layer(layer, bn_class)(x)
    # pad as SAME would, convolve at stride 1, keep every s-th row and column: the same result
    pads = tuple(_same_pads(layer, a) for a in (0, 1))
    if any(pads[0] + pads[1]):
        x = L.ZeroPadding2D(pads, name=f"{layer.name}_pad")(x)
    y = _main_layer(layer, bn_class, strides=(1, 1), padding="valid")(x)
    return L.AveragePooling2D(1, strides=layer.stride, name=f"{layer.name}_stride")(y)


def _same_pads(layer: Layer, axis: int) -> tuple[int, int]:
    """(before, after): the zeros TF's padding adds along `axis` (none for `valid`)."""
    if layer.padding != "same":
        return 0, 0
    n, k, s, d = layer.input_shape[axis], layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
    out = geometry.output_size(n, k, s, d, "same")
    total = max((out - 1) * s + geometry.effective_kernel(k, d) - n, 0)
    before = geometry.pad_before(n, k, s, d, "same")
    return before, total - before


def _main_layer(layer: Layer, bn_class, strides=None, padding=None):
    name, op = layer.name, layer.op
    window = dict(strides=strides or layer.stride, padding=padding or layer.padding)
    if op == "conv":
        # a whitened conv is frozen; `archdsl train` sets its weights from the data (archdsl/whitening.py)
        return L.Conv2D(layer.filters, layer.kernel, dilation_rate=layer.dilation, use_bias=layer.use_bias,
                        trainable=not layer.whiten, name=name, **window)
    if op == "sep":
        return L.SeparableConv2D(layer.filters, layer.kernel, dilation_rate=layer.dilation,
                                 depth_multiplier=layer.depth_multiplier, use_bias=layer.use_bias,
                                 name=name, **window)
    if op == "dw":
        return L.DepthwiseConv2D(layer.kernel, dilation_rate=layer.dilation,
                                 depth_multiplier=layer.depth_multiplier, use_bias=layer.use_bias,
                                 name=name, **window)
    if op == "maxpool":
        return L.MaxPooling2D(layer.kernel, name=name, **window)
    if op == "avgpool":
        return L.AveragePooling2D(layer.kernel, name=name, **window)
    if op == "gap":
        return L.GlobalAveragePooling2D(name=name)
    if op == "gmp":
        return L.GlobalMaxPooling2D(name=name)
    if op == "flatten":
        return L.Flatten(name=name)
    if op == "dense":
        return L.Dense(layer.filters, use_bias=layer.use_bias, name=name)
    if op == "dropout":
        return L.Dropout(layer.rate, name=name)
    if op == "bn":
        return bn_class(name=name)
    if op in ("act", "softmax"):
        return L.Activation(layer.activation, name=name)
    if op == "add":
        return L.Add(name=name)
    if op == "concat":
        return L.Concatenate(name=name)
    raise NotImplementedError(f"the Keras back-end has no rule for op '{op}'")


def _post_suffix(post) -> str:
    return {"drop": "drop", "bn": "bn"}.get(post.kind) or post.activation


def _post_name(layer: Layer, post, n: int) -> str:
    suffix = _post_suffix(post)
    # the same kind of post-op twice on one line (`bn relu bn`, `drop .1 drop .2`) gets a number
    same = [p for p in layer.post[:n] if _post_suffix(p) == suffix]
    return f"{layer.name}_{suffix}{len(same) + 1 if same else ''}"


def _post_layer(layer: Layer, post, n: int, bn_class):
    name = _post_name(layer, post, n)
    if post.kind == "drop":
        return L.Dropout(post.rate, name=name)
    if post.kind == "bn":
        return bn_class(name=name)
    return L.Activation(post.activation, name=name)


@keras.saving.register_keras_serializable(package="archdsl")
class BatchNormalization(L.BatchNormalization):
    """Keras' BatchNormalization, trained with TensorFlow's fused kernel (FusedBatchNormV3).

    Keras 3 normalizes with separate ops (moments, then scale and shift), each a pass over the
    activations and each with its own gradient; the fused kernel does it in one, and TensorFlow
    fuses a ReLU that follows into it too. Same weights, same config, same moving-average update
    (from the biased batch variance, as Keras'); outputs equal to float32 rounding. Anything
    the kernel does not cover (inference, other ranks or dtypes, masks, renorm) is Keras' own path.

    Named like Keras' layer on purpose: Keras files a layer's weights under its class name, so a
    saved model also loads without archdsl, as Keras' layer, with
    `custom_objects={"archdsl>BatchNormalization": keras.layers.BatchNormalization}`
    (with archdsl, `import archdsl.backends.keras` registers this class).
    """

    def call(self, inputs, training=None, mask=None):
        if not (training and self.trainable and mask is None and not self.renorm and not self.synchronized
                and len(inputs.shape) == 4 and self.axis in (-1, 3) and inputs.dtype == "float32"
                and self.epsilon >= 1.001e-5 and keras.backend.backend() == "tensorflow"):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = self.gamma if self.scale else tf.ones((channels,))
        beta = self.beta if self.center else tf.zeros((channels,))
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(inputs, gamma, beta, epsilon=self.epsilon,
                                                                    is_training=True, data_format="NHWC")
        # the kernel returns the unbiased batch variance; Keras' moving average takes the biased one
        n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), variance.dtype)
        variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
        self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
        self.moving_variance.assign(self.moving_variance * self.momentum + variance * (1.0 - self.momentum))
        return outputs
