"""The linear, positive, channel-wise twin of a Keras model, on which `verify` measures receptive fields.

    twin = linear_twin.clone(trunk, channels, model)   # float64, inputs of any size; channel b carries unit b

A clone of the model (`keras.models.clone_model`) in which each Keras layer becomes what the op
that built it says (`Op.twin`, with this module's `Kit`): max pooling becomes average pooling
with the same window, stride and padding; activations, dropout and batch norm become
identities; every convolution becomes a window with the same kernel size, stride, dilation
and padding, every tap 1/(kh*kw), on each channel alone, without bias; concat becomes add.
The window's arguments are read off the built Keras layer, not the IR, so the twin measures
what Keras built. The gradient of a unit with respect to the input is then > 0 exactly on the
pixels the unit sees (`verify` says why). Keras and TensorFlow are imported inside the functions.
"""
from __future__ import annotations

from ..ops import op_of, post_name


def clone(trunk, channels: int, model):
    """The linear, positive, channel-wise float64 clone of `trunk` (built from IR `model`), for inputs of any
    size. Each Keras layer becomes what the op that built it says (`Op.twin`); post-op steps pass through."""
    import keras

    owners = _owners(model)
    kit = Kit()

    def twin_layer(layer):
        owner, post = owners.get(layer.name, (None, False))
        made = kit.identity(layer) if post else None if owner is None else op_of(owner).twin(layer, owner, kit)
        if made is None:
            what = f"op '{owner.op}' ({layer.name})" if owner is not None else f"{type(layer).__name__} ({layer.name})"
            raise NotImplementedError(f"verify does not know how to make {what} linear, positive and channel-wise")
        return made

    inputs = keras.Input(shape=(None, None, channels), batch_size=1, dtype="float64", name="input")
    twin = keras.models.clone_model(trunk, input_tensors=inputs, clone_function=twin_layer)
    assert not twin.weights, "every kernel of the twin is a constant"
    return twin


def _owners(model) -> dict[str, tuple]:
    """Keras layer name -> (the IR layer that built it, whether it is a post-op step)."""
    owners = {}
    for layer in model.layers:
        owners[layer.name] = (layer, False)
        for helper in ("pad", "stride"):  # an op built of several Keras layers names them `<name>_<helper>`
            owners[f"{layer.name}_{helper}"] = (layer, False)
        for n in range(len(layer.post)):
            owners[post_name(layer, n)] = (layer, True)
    return owners


class Kit:
    """The twin's layers, for the ops' `twin`: each keeps the Keras layer's name and works in float64."""

    def window(self, layer):
        """A convolution's window on each channel alone, every tap 1/(kh*kw), no bias. Which channels a filter
        mixes (all, a group's, or its own) does not change which pixels it sees."""
        return _window_class()(layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate,
                               **_f64(layer))

    def average_pool(self, layer):
        """Max pooling's twin: the gradient of a max reaches only the argmax, an average's every pixel."""
        from keras import layers as L
        return L.AveragePooling2D(layer.pool_size, layer.strides, layer.padding, **_f64(layer))

    def add(self, layer):
        from keras import layers as L
        return L.Add(**_f64(layer))

    def identity(self, layer):
        return _identity_class()(**_f64(layer))

    def copy(self, layer):
        """The same layer in float64 (zero padding, average pooling: already linear and positive)."""
        return type(layer).from_config({**layer.get_config(), "dtype": "float64"})


def _f64(layer) -> dict:
    return dict(name=layer.name, dtype="float64")


_CLASSES: dict[str, type] = {}


def _identity_class():
    """A layer that returns its input and accepts the call arguments (training, mask) of the
    layer it replaces."""
    if "identity" not in _CLASSES:
        import keras

        class Identity(keras.layers.Layer):
            def call(self, inputs, training=None, mask=None):
                return inputs

            def compute_output_shape(self, input_shape):
                return input_shape

        _CLASSES["identity"] = Identity
    return _CLASSES["identity"]


def _window_class():
    """A convolution's window on each channel alone, every tap 1/(kh*kw); TF pads and strides it."""
    if "window" not in _CLASSES:
        import keras
        import tensorflow as tf

        class Window(keras.layers.Layer):
            def __init__(self, kernel_size, strides, padding, dilation_rate, **kwargs):
                super().__init__(**kwargs)
                self.kernel_size, self.strides = tuple(kernel_size), tuple(strides)
                self.padding, self.dilation_rate = padding.upper(), tuple(dilation_rate)

            def call(self, x, training=None, mask=None):
                kh, kw = self.kernel_size
                if self.strides[0] == self.strides[1]:
                    taps = tf.fill((kh, kw, x.shape[-1], 1), tf.constant(1 / (kh * kw), x.dtype))
                    return tf.nn.depthwise_conv2d(x, taps, (1, *self.strides, 1), self.padding,
                                                  dilations=self.dilation_rate)
                # TF's depthwise kernels take equal strides only: move the channels to the batch
                taps = tf.fill((kh, kw, 1, 1), tf.constant(1 / (kh * kw), x.dtype))
                y = tf.nn.conv2d(tf.transpose(x, (3, 1, 2, 0)), taps, self.strides, self.padding,
                                 dilations=self.dilation_rate)
                return tf.transpose(y, (3, 1, 2, 0))

        _CLASSES["window"] = Window
    return _CLASSES["window"]
