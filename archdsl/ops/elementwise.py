"""Element-wise ops: `dropout`, `bn`, an activation (`relu`, ...) and `softmax`.

The first three are also written after a layer's op (`sep 3x3 64 same drop .05 bn relu`): each op
class builds those post-op steps too (`post_*`), named `<layer>_drop`, `<layer>_bn`, `<layer>_relu`.
A converter folds them into the layer before; they keep the receptive field as it is.
"""
from __future__ import annotations

from ..ir import ACTIVATIONS
from .base import MODULE_CALL, Op, OpSignature, Weights, op_of, register

# Keras activation -> torch.nn module. Keras 3's gelu is exact (approximate=False), as nn.GELU();
# swish is x * sigmoid(x) = nn.SiLU; elu has alpha 1; softmax runs over channels, dim 1 in NCHW
TORCH_ACTIVATIONS = {"relu": "ReLU()", "relu6": "ReLU6()", "swish": "SiLU()", "gelu": "GELU()",
                     "sigmoid": "Sigmoid()", "tanh": "Tanh()", "elu": "ELU(alpha=1.0)", "softmax": "Softmax(dim=1)",
                     "linear": "Identity()"}
# activations a converter runs inside the op before them (TFLite's fused activation), when that op can
FUSED = ("relu", "relu6")
# a batch norm's options, read from `p`: its PostOp, or for a `bn` layer the layer itself
_BN_KERAS = "{% if not p.scale %}scale=False, {% endif %}{% if not p.center %}center=False, {% endif %}"
_BN_TORCH = ("{% if p.scale == p.center %}"
             "nn.BatchNorm{{ 2 if l.output_shape|length == 3 else 1 }}d({{ l.output_shape[-1]|py }}, "
             "eps=1e-3, momentum=0.01{% if not p.scale %}, affine=False{% endif %})"
             "{% else %}BatchNormScaleCenter({{ l.output_shape[-1]|py }}, scale={{ p.scale|py }}, "
             "center={{ p.center|py }}, eps=1e-3, momentum=0.01){% endif %}")


class ElementwiseOp(Op):
    torch_forward = MODULE_CALL
    post_kinds: tuple[str, ...] = ()

    def twin(self, keras_layer, layer, kit):
        return kit.identity(keras_layer)  # the twin is linear: dropout, batch norm, activations pass through

    def post_keras_layer(self, post, name: str, L, bn_class):
        raise NotImplementedError

    def post_params(self, post, channels: int) -> tuple[int, int]:
        return 0, 0

    def post_weights(self, post, layer) -> tuple[Weights, ...]:
        """The constant tensors this post-op step keeps in a converted model (none once folded)."""
        return ()

    def post_tensors(self, post, layer) -> int:
        """Tensors of the layer's output shape this post-op step makes after `layer`'s op (memory): none for
        dropout (inference skips it) and for a step the op before takes in."""
        return 0

    def post_rereads(self, post) -> bool:
        """Whether the step's last tensor is made from the step's input too, not only from its own first tensor."""
        return False

    def post_torch_needs(self, post) -> tuple[str, ...]:
        """The helper definitions the PyTorch export of this post-op step needs (see Op.torch_helpers)."""
        return ()

    # export of a post-op step: variables v (the layer's view), l (its IR layer), p (the PostOp), name, attr
    post_keras_source = ""
    post_torch_init = ""


@register
class Dropout(ElementwiseOp):
    name = "dropout"
    spellings = ("dropout", "drop")
    doc = "dropout in training: `dropout .1` (or `drop .1` after a layer)"
    sample = "dropout .2"
    signature = OpSignature(rate=True, post=False)
    keras_class = "Dropout"
    example = "dropout .1"
    post_kinds = ("drop",)

    def keras_layer(self, layer, L, bn_class, **window):
        return L.Dropout(layer.rate, name=layer.name)

    def post_keras_layer(self, post, name, L, bn_class):
        return L.Dropout(post.rate, name=name)

    keras_source = "{{ v.var|ident }} = layers.Dropout({{ l.rate|py }}, name={{ l.name|py }})({{ v.src }})"
    torch_init = "self.{{ v.attr|ident }} = nn.Dropout({{ l.rate|py }})"
    post_keras_source = "{{ v.var|ident }} = layers.Dropout({{ p.rate|py }}, name={{ name|py }})({{ v.var|ident }})"
    post_torch_init = "self.{{ attr|ident }} = nn.Dropout({{ p.rate|py }})"


@register
class BatchNorm(ElementwiseOp):
    name = "bn"
    spellings = ("bn",)
    doc = ("batch normalization (Keras' defaults: momentum 0.99, epsilon 1e-3); `bn noscale` / `bn nocenter`: "
           "without gamma / beta")
    sample = ("bn\nbn noscale\nbn nocenter\nbn noscale nocenter\nconv 3x3 4 same bn noscale relu\n"
              "conv 3x3 4 same bn nocenter relu bn nocenter noscale")
    signature = OpSignature(scale_center=True)
    keras_class = "BatchNormalization"

    def post_tensors(self, post, layer):
        # folded into a conv's or dense layer's weights; after anything else a multiply, then an add
        return 0 if op_of(layer).folds_batch_norm else 1

    def post_weights(self, post, layer) -> tuple[Weights, ...]:
        if op_of(layer).folds_batch_norm:
            return ()
        channels = layer.output_shape[-1]
        return Weights(channels, 1), Weights(channels, 1)  # the multiply's scale and the add's shift

    def weight_tensors(self, layer):
        channels = layer.output_shape[-1]
        return Weights(channels, 1), Weights(channels, 1)
    example = "bn"
    post_kinds = ("bn",)

    def resolve_fields(self, opts, written):
        return {"scale": opts.scale, "center": opts.center}

    def params(self, layer):
        return self.post_params(layer, layer.output_shape[-1])

    def post_params(self, post, channels):
        # as Keras counts them: gamma (unless noscale) and beta (unless nocenter) train; the moving mean and
        # variance, always there, do not
        trainable = (post.scale + post.center) * channels
        return trainable + 2 * channels, trainable

    def keras_layer(self, layer, L, bn_class, **window):
        return bn_class(scale=layer.scale, center=layer.center, name=layer.name)

    def post_keras_layer(self, post, name, L, bn_class):
        return bn_class(scale=post.scale, center=post.center, name=name)

    def torch_needs(self, view):
        return self.torch_helpers + self.post_torch_needs(view.layer)

    def post_torch_needs(self, post):
        # torch's BatchNorm has gamma and beta both (affine) or neither: one without the other is a helper
        return ("BatchNormScaleCenter", "F") if post.scale != post.center else ()

    keras_source = ("{% set p = l %}{{ v.var|ident }} = layers.BatchNormalization(" + _BN_KERAS
                    + "name={{ l.name|py }})({{ v.src }})")
    torch_init = "{% set p = l %}self.{{ v.attr|ident }} = " + _BN_TORCH
    post_keras_source = ("{{ v.var|ident }} = layers.BatchNormalization(" + _BN_KERAS
                         + "name={{ name|py }})({{ v.var|ident }})")
    post_torch_init = "self.{{ attr|ident }} = " + _BN_TORCH


class ActivationOp(ElementwiseOp):
    def keras_layer(self, layer, L, bn_class, **window):
        return L.Activation(layer.activation, name=layer.name)

    keras_source = ("{{ v.var|ident }} = layers.Activation({{ l.activation|py }}, name={{ l.name|py }})"
                    "({{ v.src }})")
    torch_init = "self.{{ v.attr|ident }} = nn.{{ activations[l.activation] }}"


@register
class Act(ActivationOp):
    name = "act"
    spellings = tuple(a for a in ACTIVATIONS if a != "softmax")
    doc = "an activation, written by its name: " + ", ".join(a for a in ACTIVATIONS if a != "softmax")
    sample = "gelu"
    keras_class = "Activation"
    example = "relu"
    post_kinds = ("act",)

    def resolve_fields(self, opts, written):
        return {"activation": written.lower()}

    def layer_name(self, index, fields, written):
        return f"l{index:02d}_{written.lower()}"

    def assert_name(self, layer):
        return layer.activation

    def assert_spelling(self, written):
        return written

    def post_keras_layer(self, post, name, L, bn_class):
        return L.Activation(post.activation, name=name)

    def post_tensors(self, post, layer):
        if post.activation == "linear" or (post.activation in FUSED and op_of(layer).fuses_activation):
            return 0
        return 2 if post.activation == "swish" else 1  # swish: a sigmoid, then a multiply

    def post_rereads(self, post) -> bool:
        return post.activation == "swish"  # x * sigmoid(x): the multiply reads x again

    post_keras_source = ("{{ v.var|ident }} = layers.Activation({{ p.activation|py }}, name={{ name|py }})"
                         "({{ v.var|ident }})")
    post_torch_init = "self.{{ attr|ident }} = nn.{{ activations[p.activation] }}"


@register
class Softmax(ActivationOp):
    name = "softmax"
    spellings = ("softmax",)
    doc = "softmax over the channels (the model's class scores)"
    sample = "gap\nsoftmax"
    signature = OpSignature(post=False)
    keras_class = "Activation('softmax')"
    draw_kind = "head"
    example = "softmax"

    def resolve_fields(self, opts, written):
        return {"activation": "softmax"}
