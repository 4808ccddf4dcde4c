"""The seed document's two hand-written Keras models (/work/shared/seed/000_460896ea4eb78a9f.txt),
written as the seed writes them: keras.Sequential, one `model.add` a layer, the seed's
comments kept. The reference that `specs/base.arch` and `specs/best.arch` must compile to.

Only what the seed needs to build a model is changed: `keras` is Keras 3 (the seed used
tf.keras 2.x), `num_classes` is an argument, and the model is returned instead of compiled
and summarised. Keras 3 warns about `input_shape=` on a layer; the seed's spelling is kept
and the warning silenced.
"""
import warnings

import keras
from keras.layers import (Activation, BatchNormalization, Dropout, Flatten, GlobalAveragePooling2D,
                          MaxPooling2D, SeparableConv2D)


def base_model(num_classes=10):
    """The seed's base network (81.66 % after 50 epochs): 80,203 params."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input_shape.*")
        # Define the model, Since image size is already small we wont use stride > 1.
        # we have to use only separatble convolution
        model = keras.Sequential()

        # rin=1, nin = 32x32, cin= 3, jin=1, k=3, p=1, s=1, jout=1, rout=3, nout=32x32, cout=16
        model.add(SeparableConv2D(filters=32, kernel_size=(3, 3), padding='same', depth_multiplier=1, input_shape=(32, 32, 3), use_bias=False))
        model.add(Dropout(0.07))
        model.add(BatchNormalization())
        model.add(Activation('relu'))

        # rin=3, nin = 32x32, cin=16, jin=1, k=3, p=1, s=1, jout=1, rout=5, nout=32x32, cout=32
        model.add(SeparableConv2D(filters=48, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.07))
        model.add(BatchNormalization())
        model.add(Activation('relu'))

        # rin=5, nin = 32x32, cin=32, jin=1, k=3, p=1, s=1, jout=1, rout=7, nout=32x32, cout=48
        model.add(SeparableConv2D(filters=96, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.07))
        model.add(BatchNormalization())
        model.add(Activation('relu'))

        # rin=7, nin = 32x32, cin=48, jin=1, k=2, p=0, s=2, jout=2, rout=8, nout=16x16, cout=48
        model.add(MaxPooling2D())

        # rin=8, nin = 16x16, cin= 48, jin=2, k=3, p=1, s=1, jout=2, rout=12, nout=16x16, cout=64
        model.add(SeparableConv2D(filters=128, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.07))
        model.add(BatchNormalization())
        model.add(Activation('relu'))

        # rin=12, nin = 16x16, cin= 64, jin=2, k=3, p=1, s=1, jout=2, rout=16, nout=16x16, cout=96
        model.add(SeparableConv2D(filters=160, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.07))
        model.add(BatchNormalization())
        model.add(Activation('relu'))

        # rin=16, nin = 16x16, cin=96, jin=2, k=2, p=0, s=2, jout=4, rout=18, nout=8x8, cout=96
        model.add(MaxPooling2D())

        # rin=18, nin = 8x8, cin= 96, jin=4, k=3, p=0, s=1, jout=4, rout=26, nout=6x6, cout=192
        model.add(SeparableConv2D(filters=192, kernel_size=(3, 3), padding='valid', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.07))
        model.add(BatchNormalization())
        model.add(Activation('relu'))

        # rin=26, nin = 6x6, cin= 192, jin=4, k=3, p=0, s=1, jout=4, rout=34, nout=4x4, cout=10 Cfar_10 has 10 classes
        model.add(SeparableConv2D(filters=num_classes, kernel_size=(3, 3), padding='valid', depth_multiplier=1, use_bias=False))
        # not adding any activation or batch normalization after the last convolution layer

        # output size = 1x1x10
        model.add(GlobalAveragePooling2D())
        model.add(Flatten())  # 10x1
        model.add(Activation('softmax'))  # get probabilities
    return model


def best_model(num_classes=10):
    """The seed's best network ("Success 09", 85.58 %): 76,995 params."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input_shape.*")
        # Define the model, Since image size is already small we wont use stride > 1.
        # we have to use only separatble convolution
        model = keras.Sequential()
        # rin=1, nin = 32x32, cin= 3, jin=1, k=3, p=1, s=1, jout=1, rout=3, nout=32x32, cout=16
        model.add(SeparableConv2D(filters=16, kernel_size=(3, 3), padding='same', depth_multiplier=1, input_shape=(32, 32, 3), use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=3, nin = 32x32, cin=16, jin=1, k=3, p=1, s=1, jout=1, rout=5, nout=32x32, cout=16
        model.add(SeparableConv2D(filters=16, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=5, nin = 32x32, cin=32, jin=1, k=3, p=1, s=1, jout=1, rout=7, nout=32x32, cout=32
        model.add(SeparableConv2D(filters=32, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=7, nin = 32x32, cin=32, jin=1, k=3, p=1, s=1, jout=1, rout=9, nout=32x32, cout=48
        model.add(SeparableConv2D(filters=48, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=9, nin = 32x32, cin= 48, jin=1, k=3, p=1, s=1, jout=1, rout=11, nout=32x32, cout=64
        model.add(SeparableConv2D(filters=64, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=11, nin = 32x32, cin= 64, jin=1, k=3, p=1, s=2, jout=2, rout=13, nout=16x16, cout=128
        model.add(SeparableConv2D(filters=128, kernel_size=(3, 3), strides=(2, 2), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.1))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=13, nin = 16x16, cin= 96, jin=2, k=3, p=1, s=1, jout=2, rout=17, nout=16x16, cout=64
        model.add(SeparableConv2D(filters=64, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=12, nin = 8x8, cin= 64, jin=2, k=3, p=1, s=1, jout=2, rout=21, nout=8x8, cout=96
        model.add(SeparableConv2D(filters=96, kernel_size=(3, 3), padding='same', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=18, nin = 8x8, cin= 96, jin=4, k=3, p=1, s=1, jout=4, rout=25, nout=6x6, cout=128
        model.add(SeparableConv2D(filters=128, kernel_size=(3, 3), padding='valid', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=18, nin = 6x6, cin= 128, jin=4, k=3, p=1, s=1, jout=4, rout=29, nout=4x4, cout=192
        model.add(SeparableConv2D(filters=192, kernel_size=(3, 3), padding='valid', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # rin=26, nin = 4x4, cin= 192, jin=4, k=3, p=1, s=1, jout=4, rout=33, nout=2x2, cout=10 Cfar_10 has 10 classes
        model.add(SeparableConv2D(filters=num_classes, kernel_size=(3, 3), padding='valid', depth_multiplier=1, use_bias=False))
        model.add(Dropout(0.05))
        model.add(BatchNormalization())
        model.add(Activation('relu'))
        # output size = 1x1x10
        model.add(GlobalAveragePooling2D())
        model.add(Flatten())  # 10x1
        model.add(Activation('softmax'))  # get probabilities
    return model


SEED_MODELS = {"base": base_model, "best": best_model}
