"""The fused batch norm `archdsl train` builds: Keras' BatchNormalization trained with TensorFlow's fused kernel."""
from __future__ import annotations

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

    Named like Keras' layer on purpose: Keras files a layer's weights under its class name, so a
    saved model also loads without archdsl, as Keras' layer, with
    `custom_objects={"archdsl>BatchNormalization": keras.layers.BatchNormalization}`
    (with archdsl, `import archdsl.keras_backend.batchnorm` registers this class).
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
