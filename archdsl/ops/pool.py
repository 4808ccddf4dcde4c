"""Pooling: `maxpool`, `avgpool` (a window, stride = window by default) and the global `gap`, `gmp`."""
from __future__ import annotations

from . import geometry
from .base import KERAS_PAD, MODULE_CALL, OPTIONAL, Op, OpSignature, WindowOp, needs_feature_map, register

_STRIDES = "{% if l.stride != l.kernel %}, strides={{ l.stride|py }}{% endif %}"


class PoolOp(WindowOp):
    fuses_activation = True
    draw_kind = "pool"
    signature = OpSignature(OPTIONAL, window=True)

    def default_stride(self, kernel):
        return kernel

    def output_shape(self, in_shape, fields, written, fail):
        if not needs_feature_map(in_shape, written, fail):
            return None
        size = self.window_size(in_shape, fields, written, fail)
        return size and (*size, in_shape[2])

    def covers_whole_map(self, layer):
        return layer.output_shape[:2] == (1, 1) and all(
            geometry.effective_kernel(k, d) >= n
            for k, d, n in zip(layer.kernel, layer.dilation or (1, 1), layer.input_shape[:2]))


@register
class MaxPool(PoolOp):
    name = "maxpool"
    spellings = ("maxpool",)
    doc = "max pooling: `maxpool [2x2|3] [s2] [same|valid]` (stride defaults to the window)"
    sample = "maxpool 3x3 s2 same\nmaxpool 3x3 s1 pad 1,0"
    keras_class = "MaxPooling2D"
    example = "maxpool"

    def keras_layer(self, layer, L, bn_class, **window):
        return L.MaxPooling2D(layer.kernel, strides=layer.stride, padding=window.get("padding", layer.padding),
                              name=layer.name)

    def window_twin(self, keras_layer, kit):
        # the gradient of a max reaches only the argmax: the twin averages over the same window
        return kit.average_pool(keras_layer)

    keras_source = (KERAS_PAD + "{{ v.var|ident }} = layers.MaxPooling2D({{ l.kernel|py }}" + _STRIDES +
                    ", padding={{ v.keras_padding|py }}, name={{ l.name|py }})({{ v.after_pad }})")
    # TF's `same` never takes a padded pixel for the max (torch's own padding, or -inf); `pad` adds zeros
    torch_init = ("self.{{ v.attr|ident }} = nn.MaxPool2d({{ l.kernel|size }}, {{ l.stride|size }}"
                  "{% if v.padded and v.symmetric and not v.explicit %}, padding={{ v.pad_hw|size }}{% endif %})")
    torch_forward = """{% if v.explicit and v.padded %}
{{ v.var|ident }} = self.{{ v.attr|ident }}(F.pad({{ v.inputs[0]|ident }}, {{ v.pad_lrtb|py }}))  # `pad`: zeros
{% elif v.padded and not v.symmetric %}
{{ v.var|ident }} = self.{{ v.attr|ident }}(F.pad({{ v.inputs[0]|ident }}, {{ v.pad_lrtb|py }}, """ \
        """value=float("-inf")))  # TF same, -inf
{% else %}
{{ v.var|ident }} = self.{{ v.attr|ident }}({{ v.inputs[0]|ident }})
{% endif %}"""

    def torch_needs(self, view):
        return ("F",) if view.padded and (view.explicit or not view.symmetric) else ()


@register
class AvgPool(PoolOp):
    name = "avgpool"
    spellings = ("avgpool",)
    doc = "average pooling: `avgpool [2x2|3] [s2] [same|valid]` (stride defaults to the window)"
    sample = "avgpool 3x3 s2 same\navgpool 2x2 s1 pad 0,1,1,0"
    keras_class = "AveragePooling2D"
    example = "avgpool"

    def keras_layer(self, layer, L, bn_class, **window):
        return L.AveragePooling2D(layer.kernel, strides=layer.stride, padding=window.get("padding", layer.padding),
                                  name=layer.name)

    def window_twin(self, keras_layer, kit):
        return kit.copy(keras_layer)

    keras_source = (KERAS_PAD + "{{ v.var|ident }} = layers.AveragePooling2D({{ l.kernel|py }}" + _STRIDES +
                    ", padding={{ v.keras_padding|py }}, name={{ l.name|py }})({{ v.after_pad }})")
    # TF's `same` averages only the real pixels of a window: where it pads unevenly, a helper module does so;
    # `pad`'s zeros are pixels like any other
    torch_init = """{% if v.explicit %}
self.{{ v.attr|ident }} = nn.AvgPool2d({{ l.kernel|size }}, {{ l.stride|size }})
{% elif v.padded and not v.symmetric %}
self.{{ v.attr|ident }} = AvgPool2dSame({{ l.kernel|size }}, {{ l.stride|size }}, pad={{ v.pad_lrtb|py }})
{% else %}
self.{{ v.attr|ident }} = nn.AvgPool2d({{ l.kernel|size }}, {{ l.stride|size }}""" \
        """{% if v.padded %}, padding={{ v.pad_hw|size }}, count_include_pad=False{% endif %})
{% endif %}"""

    torch_forward = """{% if v.explicit and v.padded %}
{{ v.var|ident }} = self.{{ v.attr|ident }}(F.pad({{ v.inputs[0]|ident }}, {{ v.pad_lrtb|py }}))  # `pad`: zeros
{% else %}
""" + MODULE_CALL + """
{% endif %}"""

    def torch_needs(self, view):
        if view.explicit:
            return ("F",) if view.padded else ()
        return ("AvgPool2dSame", "F") if view.padded and not view.symmetric else ()


class GlobalOp(Op):
    """One vector per image: a window over the whole feature map."""
    is_global = True
    draw_kind = "head"

    def geometry(self, layer, inputs):
        (axes,) = inputs
        in_shape = layer.input_shape
        if len(in_shape) != 3:  # flatten of a vector: nothing changes
            return axes
        return tuple(geometry.window(axes[a], in_shape[a], 1, 1, 0) for a in (0, 1))

    torch_init = None


class GlobalPool(GlobalOp):
    def output_shape(self, in_shape, fields, written, fail):
        return (in_shape[2],) if needs_feature_map(in_shape, written, fail) else None


@register
class Gap(GlobalPool):
    name = "gap"
    spellings = ("gap",)
    doc = "global average pooling: one value a channel"
    sample = "gap"
    keras_class = "GlobalAveragePooling2D"
    example = "gap"

    def keras_layer(self, layer, L, bn_class, **window):
        return L.GlobalAveragePooling2D(name=layer.name)

    keras_source = "{{ v.var|ident }} = layers.GlobalAveragePooling2D(name={{ l.name|py }})({{ v.src }})"
    torch_forward = "{{ v.var|ident }} = {{ v.inputs[0]|ident }}.mean(dim=(2, 3))  # {{ l.name|comment }}"


@register
class Gmp(GlobalPool):
    name = "gmp"
    spellings = ("gmp",)
    doc = "global max pooling: one value a channel"
    sample = "gmp"
    keras_class = "GlobalMaxPooling2D"
    example = "gmp"

    def keras_layer(self, layer, L, bn_class, **window):
        return L.GlobalMaxPooling2D(name=layer.name)

    keras_source = "{{ v.var|ident }} = layers.GlobalMaxPooling2D(name={{ l.name|py }})({{ v.src }})"
    torch_forward = "{{ v.var|ident }} = {{ v.inputs[0]|ident }}.amax(dim=(2, 3))  # {{ l.name|comment }}"
