"""The op registry: one class an op, owning everything about it.

    op = OPS["sep"]            # the op's one instance; `op_of(layer)` for an IR layer
    op.output_shape(...)       # language: shape inference and its errors
    op.geometry(layer, geos)   # analysis: rf / jump / start after the layer
    op.params(layer), op.macs(layer)
    op.keras_layer(layer, L)   # the Keras back-end passes `keras.layers`: this package imports no framework
    op.twin(keras_layer, kit)  # `rf --verify`'s linear, positive twin of the built layer
    op.keras_source, op.torch_init, op.torch_forward   # export: Jinja snippets, rendered by the exporter

A subclass registers itself with `@register`; adding an op is adding a class (and importing its
module in `ops/__init__.py`). Back-ends, analysis and renderers ask the op; none tests op names.
An op a back-end cannot express leaves that back-end's hook None, and the back-end says so in one
error naming the op.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, ClassVar

from . import geometry

REQUIRED, OPTIONAL = "required", "optional"
MAX_DIM = 100_000   # the most filters, units, channels or pixels a side a layer may have

Geo = tuple  # (rows, columns): a geometry.Axis each, which input pixels each unit sees
Fail = Callable[..., None]   # fail(message, hint, code="E230")


@dataclass(frozen=True)
class OpSignature:
    """Which written arguments an op takes (options.read_options places the tokens)."""
    kernel: str | None = None      # REQUIRED / OPTIONAL (pools default to 2x2) / None
    filters: str | None = None     # REQUIRED for conv/sep/dense
    rate: bool = False             # dropout takes a rate
    window: bool = False           # stride, padding
    dilation: bool = False
    depth_multiplier: bool = False
    groups: bool = False           # `groups N`: a grouped convolution
    factor: bool = False           # `upsample 2x [nearest|bilinear]`
    bias: bool | None = None       # default use_bias; None = no bias option
    post: bool = True              # accepts `drop P`, `bn`, activations after the op
    whiten: bool = False           # accepts `whiten` (a frozen kernel set from the data)
    scale_center: bool = False     # a batch norm itself: `noscale`/`nocenter` right after the op apply to it


@dataclass(frozen=True)
class Weights:
    """A constant tensor of the op as a converter stores it: `elements` values, quantized per `channels`
    (1: one scale for the whole tensor); a bias is kept as 32-bit integers in an int8 model."""
    elements: int
    channels: int
    bias: bool = False


class Op:
    name: ClassVar[str]                        # as the IR stores it (`Layer.op`)
    spellings: ClassVar[tuple[str, ...]] = ()  # what a layer line may start with; () for ops written otherwise
    doc: ClassVar[str] = ""                    # one line, for help and editors
    signature: ClassVar[OpSignature] = OpSignature()
    keras_class: ClassVar[str] = ""            # the Keras layer it compiles to, for the reader
    draw_kind: ClassVar[str] = "norm"          # diagram colour group: conv, pool, head, dense, merge, norm
    windowed: ClassVar[bool] = False           # slides a window: kernel, stride, dilation, padding
    is_global: ClassVar[bool] = False          # one vector per image out of a feature map (gap, flatten)
    count_word: ClassVar[str | None] = None    # what its number counts: "filters", "units"
    joins_paths: ClassVar[bool] = False        # a merge of several paths (add, concat)
    example: ClassVar[str] = ""                # a line that is accepted, for hints
    sample: ClassVar[str] = ""                 # spec lines using the op after `input HxWxC`: the generic tests'

    # --- language --------------------------------------------------------------------------
    def resolve_fields(self, opts, written: str) -> dict:
        """The IR fields of a layer from its options as read, defaults filled in."""
        return {}

    def layer_name(self, index: int, fields: dict, written: str) -> str:
        """The Keras layer name: `l03_sep64`."""
        return f"l{index:02d}_{self.name}{fields.get('filters') or ''}"

    def output_shape(self, in_shape: tuple, fields: dict, written: str, fail: Fail) -> tuple | None:
        """The output shape, or None after `fail` says why there is none."""
        return in_shape

    def sets_channels(self, layer) -> bool:
        """Whether the layer decides its output's channels (the one to point at when they are wrong)."""
        return self.count_word is not None

    def assert_name(self, layer) -> str:
        """The name `assert ops in [...]` knows the layer by."""
        return self.name

    def assert_spelling(self, written: str) -> str:
        """The name `assert ops in [...]` knows a written spelling of the op by."""
        return self.name

    # --- analysis --------------------------------------------------------------------------
    def geometry(self, layer, inputs: list[Geo]) -> Geo:
        """Which input pixels the layer's units see (a `geometry.Axis` an axis); an element-wise op's are its
        input's."""
        (geo,) = inputs
        return geo

    def window(self, layer, axis: int) -> tuple[int, int, int, int, int, int] | None:
        """(n, k, s, d, pad_before, pad_after) of a windowed op along an axis; None for other ops."""
        return None

    def canvas_reach(self, layer, axis: int) -> int:
        """How many of its input's units past the edge a non-window op reads (`rf --verify`'s canvas margin)."""
        return 0

    def covers_whole_map(self, layer) -> bool:
        """A pool whose one window covers the whole map (`avgpool 8` on 8x8): a global op in disguise."""
        return False

    def params(self, layer) -> tuple[int, int]:
        """(total, trainable) weights of the main op; post-ops are counted by theirs."""
        return 0, 0

    def macs(self, layer) -> int:
        return 0

    # --- memory (analysis/memory.py) -----------------------------------------------------------
    fuses_activation: ClassVar[bool] = False   # relu/relu6 written after it run inside it (no tensor of their own)
    folds_batch_norm: ClassVar[bool] = False   # a `bn` written after it is folded into its weights

    def weight_tensors(self, layer) -> tuple[Weights, ...]:
        """The op's constant tensors in a converted model (a conv's kernel and bias; a batch norm's folded away)."""
        return ()

    def step_shapes(self, layer) -> tuple[tuple[int, ...], ...]:
        """The tensors the op makes before its output, in order, each read by the next (an explicit padding,
        a separable conv's depthwise output): alive only while the layer runs."""
        return ()

    # --- the Keras back-end ------------------------------------------------------------------
    def keras_layer(self, layer, L, bn_class, **window):
        """The main Keras layer, named `layer.name`; `L` is `keras.layers`. None: not expressible."""
        return None

    def keras_call(self, layer, x, L, bn_class):
        """Apply the main op to tensor(s) `x`; an op built of several Keras layers overrides this."""
        return self.keras_layer(layer, L, bn_class)(x)

    def keras_output(self, layer) -> str:
        """The name of the Keras layer that holds the main op's output."""
        return layer.name

    def twin(self, keras_layer, layer, kit):
        """The linear, positive, channel-wise counterpart of a Keras layer the op built for `layer` (see
        keras_backend/linear_twin.py); `kit` makes the twin's layers. None: `rf --verify` cannot measure it."""
        return None

    # --- export (Jinja snippets; variables: v the layer's view, l the IR layer) ----------------
    keras_source: ClassVar[str | None] = None   # lines of `build_model()`
    torch_init: ClassVar[str | None] = None     # lines of `__init__` (None: computed in forward)
    torch_forward: ClassVar[str | None] = None  # lines of `forward` (MODULE_CALL: call the module of torch_init)
    torch_helpers: ClassVar[tuple[str, ...]] = ()  # helper definitions the file needs: "SeparableConv2d", "F"

    def torch_needs(self, view) -> tuple[str, ...]:
        return self.torch_helpers

    def implements(self, hook: str) -> bool:
        """Whether the op has a `hook` (a method it overrides, or an export snippet it gives)."""
        value = getattr(type(self), hook)
        return value is not None and value is not getattr(Op, hook, None)


MODULE_CALL = "{{ v.var|ident }} = self.{{ v.attr|ident }}({{ v.inputs[0]|ident }})"
# a window op's explicit `pad`, in Keras: the zeros first, then the layer `valid` on `v.after_pad`
KERAS_PAD = """{% if l.padding == "explicit" %}
{{ v.var|ident }} = layers.ZeroPadding2D({{ v.pad_pairs|py }}, name={{ (l.name ~ "_pad")|py }})({{ v.src }})
{% endif %}
"""

OPS: dict[str, Op] = {}
POST_STEPS: dict[str, Op] = {}   # PostOp.kind -> the op that builds it


def register(cls):
    op = cls()
    if op.name in OPS:
        raise ValueError(f"op '{op.name}' is registered twice")
    OPS[op.name] = op
    for kind in getattr(cls, "post_kinds", ()):
        POST_STEPS[kind] = op
    return cls


def op_of(layer) -> Op:
    return OPS[layer.op]


def post_step(post) -> Op:
    return POST_STEPS[post.kind]


def relative_geometry(layers, origin: int) -> dict[int, Geo]:
    """The geometry of the layers that read from layer `origin`, in units of origin's map (there rf 1, jump 1,
    start 0): what a path from origin, such as a shortcut, must match."""
    geo = {origin: (geometry.INPUT_AXIS, geometry.INPUT_AXIS)}
    for layer in layers:
        if layer.index > origin and layer.inputs and all(i in geo for i in layer.inputs):
            geo[layer.index] = op_of(layer).geometry(layer, [geo[i] for i in layer.inputs])
    return geo


def post_name(layer, n: int) -> str:
    """The Keras name of a layer's post-op step n: `l03_sep64_bn`; the same kind twice on one line gets a
    number (`bn relu bn`: `_bn`, `_relu`, `_bn2`). The back-end and the exporters name them alike."""
    suffix = _post_suffix(layer.post[n])
    same = [p for p in layer.post[:n] if _post_suffix(p) == suffix]
    return f"{layer.name}_{suffix}{len(same) + 1 if same else ''}"


def _post_suffix(post) -> str:
    return post.activation if post.kind == "act" else post.kind


class WindowOp(Op):
    """Conv and pooling ops: a kernel slid with a stride and dilation over an input padded as TF's `same`,
    not at all (`valid`), or by explicit zeros (`pad 3`, `pad 1,2`: a zero-padding, then `valid`)."""
    windowed = True

    def window(self, layer, axis):
        n, k, s, d = layer.input_shape[axis], layer.kernel[axis], layer.stride[axis], layer.dilation[axis]
        if layer.padding == "explicit":
            return n, k, s, d, layer.pad[2 * axis], layer.pad[2 * axis + 1]
        return (n, k, s, d, *geometry.pads(n, k, s, d, layer.padding))

    def geometry(self, layer, inputs):
        (axes,) = inputs
        return tuple(geometry.window(axes[a], *self.window(layer, a)[1:5]) for a in (0, 1))

    def default_stride(self, kernel):
        return (1, 1)

    def resolve_fields(self, opts, written):
        kernel = opts.kernel or (2, 2)
        return dict(kernel=kernel, stride=opts.stride or self.default_stride(kernel),
                    dilation=opts.dilation or (1, 1), padding=opts.padding or "valid", pad=opts.pad)

    def window_size(self, in_shape, fields, written, fail):
        """(h, w) of the output, or None after saying why (a stride with a dilation, a window too large)."""
        (kh, kw), (sh, sw), (dh, dw_) = fields["kernel"], fields["stride"], fields["dilation"]
        if max(sh, sw) > 1 and max(dh, dw_) > 1:
            fail(f"{written} with both a stride and a dilation above 1", "Keras supports one or the other "
                 "in a layer; split it into two layers", "E231")
            return None
        pad = fields.get("pad") or (0, 0, 0, 0)
        sizes = [in_shape[a] + pad[2 * a] + pad[2 * a + 1] for a in (0, 1)]
        padding = "valid" if fields["padding"] == "explicit" else fields["padding"]
        h = geometry.output_size(sizes[0], kh, sh, dh, padding)
        w = geometry.output_size(sizes[1], kw, sw, dw_, padding)
        if h < 1 or w < 1:
            keff = (geometry.effective_kernel(kh, dh), geometry.effective_kernel(kw, dw_))
            what = f"{sizes[0]}x{sizes[1]} padded" if fields.get("pad") else f"{in_shape[0]}x{in_shape[1]}"
            fail(f"{written} would output {h}x{w}: its {keff[0]}x{keff[1]} window is larger than its "
                 f"{what} input", "use `same` padding, a smaller kernel, or downsample less before it", "E232")
            return None
        return h, w

    def keras_call(self, layer, x, L, bn_class):
        if layer.padding != "explicit":
            return self.keras_layer(layer, L, bn_class)(x)
        x = L.ZeroPadding2D(self.pad_pairs(layer), name=f"{layer.name}_pad")(x)
        return self.keras_layer(layer, L, bn_class, padding="valid")(x)

    def twin(self, keras_layer, layer, kit):
        # the window itself has a twin of its own; the zero padding (and 1x1 subsampling) around it stays
        return self.window_twin(keras_layer, kit) if keras_layer.name == layer.name else kit.copy(keras_layer)

    def window_twin(self, keras_layer, kit):
        return None

    def step_shapes(self, layer):
        return (self.padded_shape(layer),) if self.pads_apart(layer, layer.stride) else ()

    def pads_apart(self, layer, stride) -> bool:
        """Whether the zero padding is a tensor of its own: a converter folds a padding equal to what `same`
        would add at the stride the window runs with into the window (TFLite's PAD + VALID -> SAME)."""
        pads = self.pad_pairs(layer)
        if not any(pads[0] + pads[1]) or (layer.padding != "explicit" and stride == layer.stride):
            return False
        return any(pads[a] != geometry.pads(layer.input_shape[a], layer.kernel[a], stride[a], layer.dilation[a],
                                            "same") for a in (0, 1))

    def padded_shape(self, layer) -> tuple[int, int, int]:
        (top, bottom), (left, right) = self.pad_pairs(layer)
        h, w, c = layer.input_shape
        return h + top + bottom, w + left + right, c

    def pad_pairs(self, layer):
        """((top, bottom), (left, right)), as Keras' ZeroPadding2D takes it."""
        return tuple(self.window(layer, a)[4:] for a in (0, 1))


def needs_feature_map(in_shape, written: str, fail: Fail) -> bool:
    if len(in_shape) == 3:
        return True
    fail(f"{written} needs a feature map (HxWxC), but its input is a vector of {in_shape[0]}",
         "put gap/flatten after the last conv or pool layer")
    return False
