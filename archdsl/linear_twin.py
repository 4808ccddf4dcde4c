"""The linear, positive, channel-wise twin of a Keras model, on which `verify` measures receptive fields.

    twin = linear_twin.clone(trunk, channels)   # float64, inputs of any size; channel b carries unit b

A clone of the model (`keras.models.clone_model`) in which max pooling becomes average
pooling with the same window, stride and padding; activations, dropout and batch norm
become identities; every convolution becomes a window with the same kernel size, stride,
dilation and padding, every tap 1/(kh*kw), on each channel alone, without bias; concat
becomes add. The gradient of a unit with respect to the input is then > 0 exactly on the
pixels the unit sees (`verify` says why). Keras and TensorFlow are imported inside the functions.
"""
from __future__ import annotations


def clone(trunk, channels: int):
    """The linear, positive, channel-wise float64 clone of `trunk`, for inputs of any size."""
    import keras

    inputs = keras.Input(shape=(None, None, channels), batch_size=1, dtype="float64", name="input")
    twin = keras.models.clone_model(trunk, input_tensors=inputs, clone_function=_linear_layer)
    assert not twin.weights, "every kernel of the twin is a constant"
    return twin


def _linear_layer(layer):
    """clone_function: a layer of the model -> its linear, positive, channel-wise counterpart.

    Channel b of every tensor carries batch item b: a convolution becomes a window whose
    taps are all 1/(kh*kw), applied to each channel alone; concat becomes add. With positive
    weights, mixing channels does not change which pixels a unit (summed over its channels) sees.
    """
    from keras import layers as L

    f64 = dict(name=layer.name, dtype="float64")
    if isinstance(layer, (L.Conv2D, L.SeparableConv2D, L.DepthwiseConv2D)):
        if getattr(layer, "groups", 1) != 1:
            raise NotImplementedError(f"verify does not handle the grouped convolution {layer.name}")
        return _window_class()(layer.kernel_size, layer.strides, layer.padding, layer.dilation_rate, **f64)
    if isinstance(layer, L.MaxPooling2D):
        return L.AveragePooling2D(layer.pool_size, layer.strides, layer.padding, **f64)
    if isinstance(layer, (L.Add, L.Concatenate)):
        return L.Add(**f64)
    if isinstance(layer, (L.Dropout, L.SpatialDropout2D, L.GaussianNoise, L.GaussianDropout,
                          L.BatchNormalization, L.Activation, L.ReLU, L.LeakyReLU, L.ELU, L.Softmax,
                          L.Identity)):
        return _identity_class()(**f64)
    if isinstance(layer, (L.AveragePooling2D, L.ZeroPadding2D, L.Cropping2D)):
        return type(layer).from_config({**layer.get_config(), "dtype": "float64"})
    raise NotImplementedError(f"verify does not know how to make {type(layer).__name__} ({layer.name}) "
                              "linear, positive and channel-wise")


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
