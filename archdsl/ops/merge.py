"""The merges that `residual` and `parallel` statements add: `add` and `concat` of several paths.

They are not written as layer lines; resolve (language/merges) builds them with their inputs.
"""
from __future__ import annotations

from . import geometry
from .base import MAX_DIM, Op, register


class MergeOp(Op):
    fuses_activation = True
    draw_kind = "merge"
    joins_paths = True
    keeps_shape = False       # add: the output has its inputs' shape (a residual's shortcut must match)
    mismatch_hint = ""

    def mismatch(self, first: tuple, shape: tuple) -> str | None:
        """What the merge needs of its inputs ("equal shapes"), if `shape` does not fit with `first`."""
        raise NotImplementedError

    def merged_shape(self, shapes: list[tuple]) -> tuple | str:
        """The output shape, or a message why there is none."""
        raise NotImplementedError

    def geometry(self, layer, inputs):
        return tuple(geometry.union([axes[a] for axes in inputs]) for a in (0, 1))

    def keras_call(self, layer, x, L, bn_class):
        return self.keras_layer(layer, L, bn_class)(x)

    def twin(self, keras_layer, layer, kit):
        return kit.add(keras_layer)  # concat becomes add: channel b carries unit b on every path

    torch_init = None


@register
class Add(MergeOp):
    name = "add"
    doc = "the sum of a residual block's paths"
    sample = "residual {\n  conv 3x3 4 same bn relu\n}"
    keras_class = "Add"
    keeps_shape = True
    mismatch_hint = "make every branch end with the same shape"

    def mismatch(self, first, shape):
        return None if shape == first else "equal shapes"

    def merged_shape(self, shapes):
        return shapes[0]

    def keras_layer(self, layer, L, bn_class, **window):
        return L.Add(name=layer.name)

    keras_source = "{{ v.var|ident }} = layers.Add(name={{ l.name|py }})({{ v.src }})"
    torch_forward = ("{{ v.var|ident }} = {% for name in v.inputs %}{{ name|ident }}{% if not loop.last %} + "
                     "{% endif %}{% endfor %}  # {{ l.name|comment }}")


@register
class Concat(MergeOp):
    name = "concat"
    doc = "the paths of a parallel block side by side, along the channels"
    sample = "parallel concat {\n  branch {\n    conv 1x1 3\n  }\n  branch {\n  }\n}"
    keras_class = "Concatenate"
    mismatch_hint = "make every branch downsample alike"

    def mismatch(self, first, shape):
        return None if len(shape) == len(first) and shape[:-1] == first[:-1] else "equal spatial sizes"

    def merged_shape(self, shapes):
        channels = sum(shape[-1] for shape in shapes)
        if channels > MAX_DIM:  # each branch is bounded; their sum is bounded like any layer's channels
            return f"concat would output {channels:,} channels; a layer has at most {MAX_DIM:,}"
        return shapes[0][:-1] + (channels,)

    def keras_layer(self, layer, L, bn_class, **window):
        return L.Concatenate(name=layer.name)

    keras_source = "{{ v.var|ident }} = layers.Concatenate(name={{ l.name|py }})({{ v.src }})"
    torch_forward = ("{{ v.var|ident }} = torch.cat([{% for name in v.inputs %}{{ name|ident }}"
                     "{% if not loop.last %}, {% endif %}{% endfor %}], dim=1)  # {{ l.name|comment }}")
