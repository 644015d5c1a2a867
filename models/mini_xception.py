"""Mini-Xception (Arriaga, Ploeger and Valdenegro, 2017) in backend-neutral Keras 3.

A stem of two 3x3 convolutions, four residual blocks of depthwise-separable convolutions with
batch norm and ReLU (each halving the resolution), a 3x3 convolution to one map per class,
global average pooling and softmax. The original has about 58k parameters; ``width`` scales
every layer's filters, which buys accuracy for compute. Only ``keras.layers`` are used so the
same ``.keras`` file runs on TensorFlow (production) and JAX (GPU training machines).
"""
from __future__ import annotations

import keras
from keras import layers, regularizers

from fervid.models.labels import NUM_CLASSES
from fervid.models.preprocessing import FACE_SIZE

BLOCK_FILTERS: tuple[int, ...] = (16, 32, 64, 128)
STEM_FILTERS: int = 8


def _residual_block(x, filters: int, l2: float, name: str):
    """Two separable 3x3 convolutions and a strided max-pool, plus a strided 1x1 shortcut."""
    reg = regularizers.L2(l2) if l2 else None
    shortcut = layers.Conv2D(filters, 1, strides=2, padding="same", use_bias=False,
                             name=f"{name}_shortcut")(x)
    shortcut = layers.BatchNormalization(name=f"{name}_shortcut_bn")(shortcut)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                               depthwise_regularizer=reg, pointwise_regularizer=reg,
                               name=f"{name}_sep1")(x)
    x = layers.BatchNormalization(name=f"{name}_bn1")(x)
    x = layers.Activation("relu", name=f"{name}_relu1")(x)
    x = layers.SeparableConv2D(filters, 3, padding="same", use_bias=False,
                               depthwise_regularizer=reg, pointwise_regularizer=reg,
                               name=f"{name}_sep2")(x)
    x = layers.BatchNormalization(name=f"{name}_bn2")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name=f"{name}_pool")(x)
    return layers.Add(name=f"{name}_add")([x, shortcut])


def build_mini_xception(width: float = 1.0, num_classes: int = NUM_CLASSES,
                        l2: float = 0.0, dropout: float = 0.0) -> keras.Model:
    """Build Mini-Xception for 48x48x1 inputs scaled to [-1, 1] (see ``models.preprocessing``).

    ``width`` multiplies every filter count (1.0 is the paper's model); ``l2`` adds weight
    decay to the convolutions; ``dropout`` is applied before the classifier convolution.
    """
    if width <= 0:
        raise ValueError(f"width must be positive, got {width}")

    def scaled(filters: int) -> int:
        return max(4, int(round(filters * width)))

    reg = regularizers.L2(l2) if l2 else None
    inputs = keras.Input((FACE_SIZE, FACE_SIZE, 1), name="face")
    x = inputs
    for i in (1, 2):
        x = layers.Conv2D(scaled(STEM_FILTERS), 3, use_bias=False, kernel_regularizer=reg,
                          name=f"stem_conv{i}")(x)
        x = layers.BatchNormalization(name=f"stem_bn{i}")(x)
        x = layers.Activation("relu", name=f"stem_relu{i}")(x)
    for i, filters in enumerate(BLOCK_FILTERS, start=1):
        x = _residual_block(x, scaled(filters), l2, name=f"block{i}")
    if dropout:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Conv2D(num_classes, 3, padding="same", kernel_regularizer=reg, name="class_conv")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=f"mini_xception_w{width:g}")
