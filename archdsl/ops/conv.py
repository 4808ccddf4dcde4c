"""The convolutions: `conv` (Conv2D), `sep` (SeparableConv2D) and `dw` (DepthwiseConv2D)."""
from __future__ import annotations

import math

from ..errors import SpecSemanticError
from . import geometry
from .base import KERAS_PAD, MAX_DIM, REQUIRED, OpSignature, Weights, WindowOp, needs_feature_map, register

# Keras window arguments as the templates write them: only what differs from Keras' defaults
_STRIDES = "{% if l.stride != (1, 1) %}, strides={{ l.stride|py }}{% endif %}"
_DILATION = "{% if l.dilation != (1, 1) %}, dilation_rate={{ l.dilation|py }}{% endif %}"
_DM = "{% if l.depth_multiplier != 1 %}, depth_multiplier={{ l.depth_multiplier|py }}{% endif %}"
# torch: the layer's own padding argument where TF pads alike on both sides
_T_STRIDE = "{% if l.stride != (1, 1) %}, stride={{ l.stride|size }}{% endif %}"
_T_PAD = "{% if v.padded and v.symmetric %}, padding={{ v.pad_hw|size }}{% endif %}"
_T_DILATION = "{% if l.dilation != (1, 1) %}, dilation={{ l.dilation|size }}{% endif %}"
# where TF pads one more after than before, F.pad does it first
_T_FORWARD = ("""{% if v.padded and not v.symmetric %}
{{ v.var|ident }} = self.{{ v.attr|ident }}(F.pad({{ v.inputs[0]|ident }}, {{ v.pad_lrtb|py }}))"""
              """  # TF same: pad (left, right, top, bottom)
{% else %}
{{ v.var|ident }} = self.{{ v.attr|ident }}({{ v.inputs[0]|ident }})
{% endif %}""")


class ConvOp(WindowOp):
    """What the three convolutions share: filters or a depth multiplier, bias, a window of taps."""
    draw_kind = "conv"
    torch_forward = _T_FORWARD
    fuses_activation = True
    folds_batch_norm = True

    def window_twin(self, keras_layer, kit):
        return kit.window(keras_layer)  # a window of equal taps

    def torch_needs(self, view):
        return self.torch_helpers + (("F",) if view.padded and not view.symmetric else ())


@register
class Conv(ConvOp):
    name = "conv"
    spellings = ("conv",)
    doc = "a convolution: `conv 3x3 64 [s2] [same|valid|pad 1] [d2] [groups 4] [bias] [whiten]`, then post-ops"
    sample = "conv 3x3 6 s2 same bias bn relu\nconv 3x3 6 pad 1,2 groups 2\nconv 2x2 4 s2 pad 0,1,1,0 groups 2"
    signature = OpSignature(REQUIRED, REQUIRED, window=True, dilation=True, groups=True, bias=False, whiten=True)
    keras_class = "Conv2D"
    count_word = "filters"
    example = "conv 3x3 32 same"

    def resolve_fields(self, opts, written):
        return {**super().resolve_fields(opts, written), "groups": opts.groups or 1}

    def output_shape(self, in_shape, fields, written, fail):
        if not needs_feature_map(in_shape, written, fail):
            return None
        size = self.window_size(in_shape, fields, written, fail)
        if size is None or not self.groups_divide(in_shape[2], fields, written, fail):
            return None
        return (*size, fields["filters"])

    @staticmethod
    def groups_divide(channels: int, fields: dict, written: str, fail) -> bool:
        """A grouped convolution splits its input channels and its filters into `groups` equal parts."""
        groups, filters = fields["groups"], fields["filters"]
        if channels % groups == 0 and filters % groups == 0:
            return True
        common = math.gcd(channels, filters)
        fits = max(g for g in range(1, min(groups, common) + 1) if common % g == 0)
        fail(f"{written} with groups {groups}: its {channels} input channels and {filters} filters must both "
             f"divide into {groups} groups", f"write `groups {fits}`" if fits > 1 else
             "drop `groups` (no count above 1 divides both)", "E218")
        return False

    def whitening_fits(self, tok, source: int, in_shape, fields: dict, errors: list) -> bool:
        """`whiten` sets the kernel from the images' patches: it needs the images, and one eigenvector a filter
        pair."""
        if source != 0:
            errors.append(SpecSemanticError("whiten needs the images: only a conv that reads the model input can "
                                            "be whitened", tok.span,
                                            "whiten the first conv instead, or drop `whiten` here", "E234"))
            return False
        if fields["groups"] != 1:
            errors.append(SpecSemanticError("whiten sets every filter from all input channels: it takes no `groups`",
                                            tok.span, "drop `groups` from the whitened conv", "E234"))
            return False
        (kh, kw), channels = fields["kernel"], in_shape[-1]
        most = 2 * kh * kw * channels
        if fields["filters"] % 2 or fields["filters"] > most:
            errors.append(SpecSemanticError(
                f"whiten turns the {most // 2} eigenvectors of {kh}x{kw}x{channels} patches into +/- filter pairs: "
                f"it takes an even number of filters, at most {most}, not {fields['filters']}", tok.span,
                f"write e.g. `conv {kh}x{kw} {most} ... whiten`", "E235"))
            return False
        return True

    def params(self, layer):
        kh, kw = layer.kernel
        per_filter = kh * kw * layer.input_shape[-1] // layer.groups  # a filter sees its group's channels
        weights = per_filter * layer.filters + (layer.filters if layer.use_bias else 0)
        return weights, 0 if layer.whiten else weights  # a whitened kernel is set once, frozen

    def macs(self, layer):
        kh, kw = layer.kernel
        return layer.output_shape[0] * layer.output_shape[1] * kh * kw * layer.input_shape[-1] // layer.groups \
            * layer.filters

    def weight_tensors(self, layer):
        kh, kw = layer.kernel
        f = layer.filters
        return (Weights(kh * kw * layer.input_shape[-1] // layer.groups * f, f), Weights(f, f, bias=True))

    def keras_layer(self, layer, L, bn_class, **window):
        # a whitened conv is frozen; `archdsl train` sets its weights from the data (training/whitening.py)
        return L.Conv2D(layer.filters, layer.kernel, strides=window.get("strides", layer.stride),
                        padding=window.get("padding", layer.padding), dilation_rate=layer.dilation,
                        groups=layer.groups, use_bias=layer.use_bias, trainable=not layer.whiten, name=layer.name)

    keras_source = KERAS_PAD + """{% if l.whiten %}
# whiten: frozen; `archdsl train` sets the weights from the training images (archdsl/training/whitening.py)
{% endif %}
{{ v.var|ident }} = layers.Conv2D({{ l.filters|py }}, {{ l.kernel|py }}""" + _STRIDES + \
        """, padding={{ v.keras_padding|py }}""" + _DILATION + \
        """{% if l.groups != 1 %}, groups={{ l.groups|py }}{% endif %}, use_bias={{ l.use_bias|py }}""" + \
        """{% if l.whiten %}, trainable=False{% endif %}, name={{ l.name|py }})({{ v.after_pad }})"""
    torch_init = """self.{{ v.attr|ident }} = nn.Conv2d({{ v.cin|py }}, {{ l.filters|py }}, {{ l.kernel|size }}""" + \
        _T_STRIDE + _T_PAD + _T_DILATION + """{% if l.groups != 1 %}, groups={{ l.groups|py }}{% endif %}""" + \
        """, bias={{ l.use_bias|py }})
{% if l.whiten %}
# whiten: frozen; archdsl sets the weights from the training images (archdsl/training/whitening.py)
self.{{ v.attr|ident }}.requires_grad_(False)
{% endif %}"""


class DepthwiseOp(ConvOp):
    """dw and sep: TF's depthwise kernels take only equal strides on both axes, so a stride like 2x1 is built
    as `<name>_pad` (the zeros SAME would add, if any), the layer at stride 1 `valid`, and `<name>_stride`
    (a 1x1 pool keeping every s-th row and column): the same function, the same weights."""

    def resolve_fields(self, opts, written):
        return {**super().resolve_fields(opts, written), "depth_multiplier": opts.depth_multiplier or 1}

    def depthwise_channels(self, in_shape, fields, written, what, fail) -> int | None:
        depthwise = in_shape[2] * fields["depth_multiplier"]
        if depthwise > MAX_DIM:  # filters are bounded; a depthwise step multiplies its input's channels
            fail(f"{what} would output {depthwise:,} channels ({in_shape[2]:,} x dm "
                 f"{fields['depth_multiplier']:,}); a layer has at most {MAX_DIM:,}",
                 "lower `dm`, or reduce the channels before it", "E214")
            return None
        return depthwise

    @staticmethod
    def strides_by_hand(layer) -> bool:
        return layer.stride[0] != layer.stride[1]

    def keras_call(self, layer, x, L, bn_class):
        if not self.strides_by_hand(layer):
            return super().keras_call(layer, x, L, bn_class)
        # pad as SAME (or `pad`) would, convolve at stride 1, keep every s-th row and column: the same result
        pads = self.pad_pairs(layer)
        if any(pads[0] + pads[1]):
            x = L.ZeroPadding2D(pads, name=f"{layer.name}_pad")(x)
        y = self.keras_layer(layer, L, bn_class, strides=(1, 1), padding="valid")(x)
        return L.AveragePooling2D(1, strides=layer.stride, name=f"{layer.name}_stride")(y)

    def keras_output(self, layer):
        return f"{layer.name}_stride" if self.strides_by_hand(layer) else layer.name

    def step_shapes(self, layer):
        """As keras_call builds it: the padding (explicit, or SAME's by hand), the depthwise output of a `sep`,
        and, for a stride built by hand, the stride-1 output the subsampling reads."""
        if not self.strides_by_hand(layer):
            return super().step_shapes(layer) + self.inner_shapes(layer, layer.output_shape[:2])
        padded = self.padded_shape(layer)
        full = tuple(padded[a] - geometry.effective_kernel(layer.kernel[a], layer.dilation[a]) + 1 for a in (0, 1))
        return (((padded,) if self.pads_apart(layer, (1, 1)) else ()) + self.inner_shapes(layer, full)
                + ((*full, layer.output_shape[2]),))

    def inner_shapes(self, layer, size) -> tuple[tuple[int, ...], ...]:
        """The tensors the op itself makes before its output at `size` (h, w): none for `dw`."""
        return ()

    _BY_HAND = """{% if l.stride[0] != l.stride[1] %}
# TF's depthwise kernels take only equal strides; as `archdsl build` does, pad as TF would,
# convolve at stride 1 without padding, then subsample by the stride with a 1x1 pool
{% if v.padded %}
{{ v.var|ident }} = layers.ZeroPadding2D({{ v.pad_pairs|py }}, name={{ (l.name ~ "_pad")|py }})({{ v.src }})
{% endif %}
{{ v.var|ident }} = layers.KERAS_CALL, padding="valid\"""" + _DILATION + _DM + \
        """, use_bias={{ l.use_bias|py }}, name={{ l.name|py }})({{ v.var|ident if v.padded else v.src }})
{{ v.var|ident }} = layers.AveragePooling2D(1, strides={{ l.stride|py }}, """ + \
        """name={{ (l.name ~ "_stride")|py }})({{ v.var|ident }})
{% else %}
""" + KERAS_PAD + """{{ v.var|ident }} = layers.KERAS_CALL""" + _STRIDES + \
        """, padding={{ v.keras_padding|py }}""" + _DILATION + _DM + \
        """, use_bias={{ l.use_bias|py }}, name={{ l.name|py }})({{ v.after_pad }})
{% endif %}"""


@register
class Sep(DepthwiseOp):
    name = "sep"
    spellings = ("sep",)
    doc = "a separable convolution (depthwise, then 1x1): `sep 3x3 64 [s2] [same|valid] [d2] [dm 2] [bias]`"
    sample = "sep 3x3 6 same dm 2 drop .1 bn relu\nsep 3x3 4 s2 pad 1"
    signature = OpSignature(REQUIRED, REQUIRED, window=True, dilation=True, depth_multiplier=True, bias=False)
    keras_class = "SeparableConv2D"
    count_word = "filters"
    example = "sep 3x3 64 same"

    def output_shape(self, in_shape, fields, written, fail):
        if not needs_feature_map(in_shape, written, fail):
            return None
        size = self.window_size(in_shape, fields, written, fail)
        if size is None or self.depthwise_channels(in_shape, fields, written, f"{written}'s depthwise half",
                                                   fail) is None:
            return None
        return (*size, fields["filters"])

    def params(self, layer):
        kh, kw = layer.kernel
        cin, dm, f = layer.input_shape[-1], layer.depth_multiplier, layer.filters
        weights = kh * kw * cin * dm + cin * dm * f + (f if layer.use_bias else 0)
        return weights, weights

    def macs(self, layer):
        kh, kw = layer.kernel
        cin, dm, f = layer.input_shape[-1], layer.depth_multiplier, layer.filters
        return layer.output_shape[0] * layer.output_shape[1] * (kh * kw * cin * dm + cin * dm * f)

    def weight_tensors(self, layer):
        kh, kw = layer.kernel
        inner, f = layer.input_shape[-1] * layer.depth_multiplier, layer.filters
        return (Weights(kh * kw * inner, inner), Weights(inner, inner, bias=True),  # the depthwise step
                Weights(inner * f, f), Weights(f, f, bias=True))                       # the 1x1 step

    def inner_shapes(self, layer, size):
        return ((*size, layer.input_shape[2] * layer.depth_multiplier),)  # the depthwise step's output

    def keras_layer(self, layer, L, bn_class, **window):
        return L.SeparableConv2D(layer.filters, layer.kernel, strides=window.get("strides", layer.stride),
                                 padding=window.get("padding", layer.padding), dilation_rate=layer.dilation,
                                 depth_multiplier=layer.depth_multiplier, use_bias=layer.use_bias, name=layer.name)

    keras_source = DepthwiseOp._BY_HAND.replace("KERAS_CALL", "SeparableConv2D({{ l.filters|py }}, {{ l.kernel|py }}")
    torch_helpers = ("SeparableConv2d",)
    torch_init = """self.{{ v.attr|ident }} = SeparableConv2d({{ v.cin|py }}, {{ l.filters|py }}, """ + \
        """{{ l.kernel|size }}""" + \
        _T_STRIDE + _T_PAD + _T_DILATION + \
        """{% if l.depth_multiplier != 1 %}, depth_multiplier={{ l.depth_multiplier|py }}{% endif %}""" + \
        """{% if l.use_bias %}, bias=True{% endif %})"""


@register
class Dw(DepthwiseOp):
    name = "dw"
    spellings = ("dw",)
    doc = "a depthwise convolution, each channel alone: `dw 3x3 [s2] [same|valid] [d2] [dm 2] [bias]`"
    sample = "dw 3x3 s2x1 same dm 2 bias\ndw 3x3 s1x2 pad 2,0,1,1"
    signature = OpSignature(REQUIRED, None, window=True, dilation=True, depth_multiplier=True, bias=False)
    keras_class = "DepthwiseConv2D"
    example = "dw 3x3 same"

    def sets_channels(self, layer):
        return True  # its input's channels times dm

    def output_shape(self, in_shape, fields, written, fail):
        if not needs_feature_map(in_shape, written, fail):
            return None
        size = self.window_size(in_shape, fields, written, fail)
        channels = size and self.depthwise_channels(in_shape, fields, written, written, fail)
        return None if size is None or channels is None else (*size, channels)

    def params(self, layer):
        kh, kw = layer.kernel
        cin, dm = layer.input_shape[-1], layer.depth_multiplier
        weights = kh * kw * cin * dm + (cin * dm if layer.use_bias else 0)
        return weights, weights

    def macs(self, layer):
        kh, kw = layer.kernel
        return layer.output_shape[0] * layer.output_shape[1] * kh * kw * layer.input_shape[-1] * layer.depth_multiplier

    def weight_tensors(self, layer):
        kh, kw = layer.kernel
        inner = layer.input_shape[-1] * layer.depth_multiplier
        return Weights(kh * kw * inner, inner), Weights(inner, inner, bias=True)

    def keras_layer(self, layer, L, bn_class, **window):
        return L.DepthwiseConv2D(layer.kernel, strides=window.get("strides", layer.stride),
                                 padding=window.get("padding", layer.padding), dilation_rate=layer.dilation,
                                 depth_multiplier=layer.depth_multiplier, use_bias=layer.use_bias, name=layer.name)

    keras_source = DepthwiseOp._BY_HAND.replace("KERAS_CALL", "DepthwiseConv2D({{ l.kernel|py }}")
    torch_init = """self.{{ v.attr|ident }} = nn.Conv2d({{ v.cin|py }}, {{ l.output_shape[2]|py }}, """ + \
        """{{ l.kernel|size }}""" + \
        _T_STRIDE + _T_PAD + _T_DILATION + """, groups={{ v.cin|py }}, bias={{ l.use_bias|py }})"""
