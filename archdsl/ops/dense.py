"""`flatten` (a feature map to a vector, in Keras' NHWC order) and `dense` (a fully connected layer)."""
from __future__ import annotations

from .base import MODULE_CALL, REQUIRED, OpSignature, Op, Weights, register
from .pool import GlobalOp


@register
class Flatten(GlobalOp):
    name = "flatten"
    spellings = ("flatten",)
    doc = "a feature map as one vector, in NHWC order as Keras reads it"
    sample = "conv 3x3 2 s2 same\nflatten"
    keras_class = "Flatten"
    example = "flatten"

    def output_shape(self, in_shape, fields, written, fail):
        n = 1
        for d in in_shape:  # flatten of a vector is allowed: it does nothing
            n *= d
        return (n,)

    def keras_layer(self, layer, L, bn_class, **window):
        return L.Flatten(name=layer.name)

    keras_source = "{{ v.var|ident }} = layers.Flatten(name={{ l.name|py }})({{ v.src }})"
    torch_forward = """{% if l.input_shape|length == 3 %}
{{ v.var|ident }} = torch.flatten({{ v.inputs[0]|ident }}.permute(0, 2, 3, 1), 1)""" \
        """  # {{ l.name|comment }}, in NHWC order as Keras
{% else %}
{{ v.var|ident }} = torch.flatten({{ v.inputs[0]|ident }}, 1)  # {{ l.name|comment }}
{% endif %}"""


@register
class Dense(Op):
    torch_forward = MODULE_CALL
    fuses_activation = True
    folds_batch_norm = True
    name = "dense"
    spellings = ("dense",)
    doc = "a fully connected layer: `dense 10 [nobias]`, then post-ops"
    sample = "gap\ndense 3 bn relu"
    signature = OpSignature(filters=REQUIRED, bias=True)
    keras_class = "Dense"
    draw_kind = "dense"
    count_word = "units"
    example = "dense 10"

    def output_shape(self, in_shape, fields, written, fail):
        if len(in_shape) == 3:
            fail(f"dense needs a vector, but its input is a {'x'.join(map(str, in_shape))} feature map",
                 "put `gap` or `flatten` before it", "E233")
            return None
        return (fields["filters"],)

    def params(self, layer):
        weights = layer.input_shape[-1] * layer.filters + (layer.filters if layer.use_bias else 0)
        return weights, weights

    def macs(self, layer):
        return layer.input_shape[-1] * layer.filters

    def weight_tensors(self, layer):
        # a fully connected layer's weights are quantized per tensor (TFLite's default), not per unit
        return Weights(layer.input_shape[-1] * layer.filters, 1), Weights(layer.filters, 1, bias=True)

    def keras_layer(self, layer, L, bn_class, **window):
        return L.Dense(layer.filters, use_bias=layer.use_bias, name=layer.name)

    keras_source = ("{{ v.var|ident }} = layers.Dense({{ l.filters|py }}{% if not l.use_bias %}, use_bias=False"
                    "{% endif %}, name={{ l.name|py }})({{ v.src }})")
    torch_init = ("self.{{ v.attr|ident }} = nn.Linear({{ v.cin|py }}, {{ l.filters|py }}"
                  "{% if not l.use_bias %}, bias=False{% endif %})")
