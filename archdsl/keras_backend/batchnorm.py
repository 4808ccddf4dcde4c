"""The fused batch norm `archdsl train` builds: Keras' BatchNormalization trained with TensorFlow's fused kernel.

    with saved_as_keras_layers(kmodel):    # a run's best.keras and last.keras: Keras' own layer in the file
        kmodel.save(path)
"""
from __future__ import annotations

from contextlib import contextmanager

import keras
from keras import layers as L


@keras.saving.register_keras_serializable(package="archdsl")
class BatchNormalization(L.BatchNormalization):
    """Keras' BatchNormalization, trained with TensorFlow's fused kernel (FusedBatchNormV3).

    Keras 3 normalizes with separate ops (moments, then scale and shift), each a pass over the
    activations and each with its own gradient; the fused kernel does it in one, and TensorFlow
    fuses a ReLU that follows into it too. Same weights, same config, same moving-average update
    (from the biased batch variance, as Keras'); outputs equal to float32 rounding. Anything
    the kernel does not cover (inference, other ranks or dtypes, masks, renorm) is Keras' own path.

    Named like Keras' layer on purpose: Keras files a layer's weights under its class name, so the
    weights of one fit the other. Saved as is (the resume checkpoints), a model names this class
    ("archdsl>BatchNormalization", registered for reading); `saved_as_keras_layers` saves Keras' own.
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


@contextmanager
def saved_as_keras_layers(kmodel):
    """Within the block, `kmodel`'s fused layers are Keras' BatchNormalization: saved then, the file names
    Keras' class (module keras.layers, no registered name) and `keras.models.load_model` alone loads it.

    The fused layer adds a training path and nothing else (no weights, no config), so each object is
    Keras' layer as it stands; after the block it is the fused layer again, for the next epoch.
    """
    fused = [layer for layer in _all_layers(kmodel) if type(layer) is BatchNormalization]
    for layer in fused:  # past Keras' __setattr__, which tracks weights and sublayers, not classes
        object.__setattr__(layer, "__class__", L.BatchNormalization)
    try:
        yield kmodel
    finally:
        for layer in fused:
            object.__setattr__(layer, "__class__", BatchNormalization)


def _all_layers(layer):
    for child in getattr(layer, "layers", ()):  # a model's layers, and those of a model inside it
        yield child
        yield from _all_layers(child)
