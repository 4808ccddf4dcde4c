"""Effective receptive fields: how strongly each input pixel moves a layer's centre unit (Luo et al., 2016).

    maps = gradient_maps(keras_model, model, [3, 7], images)      # IR index -> (H, W) float64 heat map
    maps = twin_maps(model, [3, 7])                                # the linear, positive twin's

For layer L and its centre unit u (`centre_unit`), the heat map is the mean over images of
|d (sum over channels of L's output at u) / d input|, summed over the input's channels. Batch
norm runs in inference mode, so images do not mix and one backward pass of the summed loss gives
every image's own gradient.

The twin (`linear_twin`, the one `rf --verify` measures with) has every convolution tap equal to
1/(kh*kw) and no nonlinearity, so its map is a closed form: along each axis the n-fold
convolution of the layers' uniform windows. Its map is measured on a canvas with a margin
(`verify`'s), so TF's padding never clips it and its mass centre is the theoretical centre.
"""
from __future__ import annotations

from ..ir import Model
from ..ops import op_of
from .memory import check_measurement


def spatial_layers(model: Model) -> list[int]:
    """IR indices of the layers whose units have a field smaller than the whole map (what `erf` can show)."""
    return [layer.index for layer in model.layers if layer.spatial and not op_of(layer).is_global]


def centre_unit(shape) -> tuple[int, int]:
    """The unit whose map is shown: the middle one, the upper-left of the middle four on an even map."""
    return (shape[0] - 1) // 2, (shape[1] - 1) // 2


def gradient_maps(keras_model, model: Model, indices: list[int], images, batch: int = 64) -> dict:
    """IR index -> the mean |gradient| map (H, W) of its centre unit over `images` (N, H, W, C), any dtype the
    Keras model takes (raw pixels when it starts with its normaliser)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from .compile import layer_outputs

    names = layer_outputs(model)
    trunk = keras.Model(keras_model.input, [keras_model.get_layer(names[i]).output for i in indices])
    units = [centre_unit(model.layer(i).output_shape) for i in indices]
    sums = {i: np.zeros(model.input_shape[:2], np.float64) for i in indices}
    for lo in range(0, len(images), batch):
        x = tf.convert_to_tensor(np.asarray(images[lo:lo + batch], np.float32))
        with tf.GradientTape(persistent=True) as tape:
            tape.watch(x)
            outs = trunk(x, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            losses = [tf.reduce_sum(out[:, y, x_, :]) for out, (y, x_) in zip(outs, units)]
        for i, loss in zip(indices, losses):
            grad = tape.gradient(loss, x)
            sums[i] += tf.reduce_sum(tf.abs(tf.cast(grad, tf.float64)), axis=(0, 3)).numpy()
        del tape
    return {i: sums[i] / len(images) for i in indices}


def twin_maps(model: Model, indices: list[int]) -> tuple[dict, tuple[int, int]]:
    """(IR index -> the twin's map of its centre unit on the canvas, the canvas margin per axis).

    A canvas map's pixel (r, c) is input pixel (r - margin[0], c - margin[1])."""
    import keras
    import tensorflow as tf

    from . import linear_twin
    from .compile import compile, layer_outputs
    from .verify import canvas_margin, canvas_offset

    margin = canvas_margin(model)
    h, w, _ = model.input_shape
    size = (h + 2 * margin[0], w + 2 * margin[1])
    check_measurement(model, size, sum(1 + len(layer.post) for layer in model.layers
                                       if layer.index <= max(indices)))
    keras_model, names = compile(model), layer_outputs(model)
    maps = {}
    for i in indices:  # one twin a layer: the twin's channels carry units, not layers
        trunk = keras.Model(keras_model.input, keras_model.get_layer(names[i]).output)
        twin = linear_twin.clone(trunk, 1, model)
        x = tf.ones((1, *size, 1), dtype=tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = twin(x, training=False)
            dy, dx = canvas_offset(model.layer(i).output_shape, out.shape, margin)
            y, x_ = centre_unit(model.layer(i).output_shape)
            loss = out[0, y + dy, x_ + dx, 0]
        maps[i] = tape.gradient(loss, x).numpy()[0, :, :, 0]
    return maps, margin
