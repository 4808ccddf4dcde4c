"""`archdsl export`: IR -> a readable, standalone Python file that builds the model.

The code lives in Jinja2 templates (`templates/<target>_model.py.j2`); this module
chooses the target, works out what the templates need (tensor variables, TF SAME
padding per layer, the analysis as comment text) and writes the result atomically.

Generated code must never carry a spec's text as code. The environment enforces it:
every `{{ ... }}` must go through a filter that makes it safe (`py`: a Python literal,
`ident`: a checked identifier, `comment`: one line of text without control
characters) or be a plain int; anything else fails the export (`_finalize`).
"""
from __future__ import annotations

import ast
import keyword
import math
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from . import geometry
from .analysis import Analysis, LayerStats, analyze
from .errors import RunError, UsageError, did_you_mean, one_of
from .ir import CONV_OPS, GLOBAL_OPS, POOL_OPS, Layer, Model
from .display import num as _num, pair as _pair, shape as _shape

TEMPLATES = Path(__file__).parent / "templates"

# export target -> its template; the keys are what `--to` accepts
TARGETS = {
    "keras": "keras_model.py.j2",
    "pytorch": "pytorch_model.py.j2",
}

# other names people use for the targets: only for the hint, `--to` takes the names above
_HINT_ALIASES = {"torch": "pytorch", "pt": "pytorch", "tf": "keras", "tensorflow": "keras", "tf.keras": "keras"}
# the ops the templates build (both targets); an IR with another op is refused before a file is written
SUPPORTED_OPS = {"conv", "sep", "dw", "maxpool", "avgpool", "gap", "gmp", "flatten", "dense", "dropout", "bn",
                 "act", "softmax", "add", "concat"}
# Keras activation -> torch.nn module. Keras 3's gelu is exact (approximate=False), as nn.GELU();
# swish is x * sigmoid(x) = nn.SiLU; elu has alpha 1; softmax runs over channels, dim 1 in NCHW
TORCH_ACTIVATIONS = {"relu": "ReLU()", "relu6": "ReLU6()", "swish": "SiLU()", "gelu": "GELU()",
                     "sigmoid": "Sigmoid()", "tanh": "Tanh()", "elu": "ELU(alpha=1.0)", "softmax": "Softmax(dim=1)",
                     "linear": "Identity()"}
# names the generated files define or import; a model's class must not shadow them
_RESERVED = {"SeparableConv2d", "AvgPool2dSame", "build_model", "torch", "nn", "F", "keras", "layers"}


def run_export(args) -> int:
    """The `export` command: validate the command line, then load, render and write."""
    target = target_of(args.to)
    output = _check_output(args.output)
    from . import load
    model = load(args.file)
    source = render(model, target)
    from .fileio import atomic_write_text
    try:
        atomic_write_text(output, source, overwrite=False)
    except OSError as exc:  # e.g. the "folder" is a file: fileio's temporary file cannot be made
        raise RunError(f"cannot write {_one_line(str(output))}: {exc.strerror or exc}",
                       hint="check the output folder and its permissions", code="E501") from None
    print(f"wrote {output} ({target} code for model {_one_line(model.name)}, {len(model.layers)} layers)")
    return 0


def target_of(name: str) -> str:
    if name in TARGETS:
        return name
    alias = _HINT_ALIASES.get(name.lower())
    hint = f"did you mean '{alias}'?" if alias else did_you_mean(name, TARGETS) or one_of(TARGETS)
    raise UsageError(f"unknown export target '{_one_line(name)}'", hint=hint, code="E630")


def _check_output(path: str) -> Path:
    out = Path(path)
    if out.suffix != ".py":
        raise UsageError(f"the export is Python source: the output must end in .py, not "
                         f"'{_one_line(out.suffix or out.name)}'",
                         hint=f"write e.g. -o {_one_line(out.with_suffix('.py').name) if out.name else 'model.py'}",
                         code="E631")
    if out.is_dir():
        raise UsageError(f"{_one_line(str(out))} is a directory", hint="give a file name ending in .py", code="E602")
    if out.exists():  # checked again when writing; this only saves loading the spec first
        raise UsageError(f"{_one_line(str(out))} already exists; archdsl does not overwrite it",
                         hint="choose another name, or remove the file first", code="E603")
    return out


def render(model: Model, target: str, analysis: Analysis | None = None) -> str:
    """The generated source for `target`, checked to be valid Python."""
    target = target_of(target)
    unsupported = sorted({layer.op for layer in model.layers} - SUPPORTED_OPS)
    if unsupported:
        raise UsageError(f"the {target} export cannot build op(s) {', '.join(unsupported)} yet",
                         hint="export to another target, or rewrite those layers", code="E632")
    if target == "pytorch":
        used = {layer.activation for layer in model.layers if layer.activation} | \
            {p.activation for layer in model.layers for p in layer.post if p.kind == "act"}
        missing = sorted(used - set(TORCH_ACTIVATIONS))
        if missing:
            raise UsageError(f"the pytorch export has no rule for activation(s) {', '.join(missing)}",
                             hint=one_of(TORCH_ACTIVATIONS), code="E632")
    analysis = analysis or analyze(model)
    env = _environment()
    source = env.get_template(TARGETS[target]).render(**_context(model, analysis))
    try:
        ast.parse(source)
    except SyntaxError as exc:  # a bug of the templates, never of the spec: say so plainly
        raise AssertionError(f"the {target} template produced invalid Python (line {exc.lineno}): {exc.msg}") from exc
    return source


# ---------------------------------------------------------------- what the templates see

@dataclass(frozen=True)
class LayerView:
    layer: Layer
    stats: LayerStats
    var: str                        # the tensor variable this layer assigns
    inputs: tuple[str, ...]         # the tensor variables it reads
    attr: str                       # torch: attribute name of its main module
    post: tuple[tuple[str, str, object], ...]  # (Keras name, torch attribute, PostOp) in written order
    where: str                      # "line 14: sep 3x3 128 s2 same drop 0.1 bn relu"
    analysis: str                   # "out 16x16x128  rf 13  jump 2  start 1  params 9,280"
    cin: int
    pad: tuple[int, int, int, int]  # TF SAME padding (top, bottom, left, right); zeros for valid
    symmetric: bool                 # pad top == bottom and left == right: the layer's own padding argument does
    branches: bool                  # a path of the graph starts or ends here (the forward pass leaves a blank line)

    @property
    def src(self) -> "Code":
        """What the layer is applied to: `x`, or `[x03, x05]` for a merge."""
        names = [identifier(name) for name in self.inputs]
        return Code(names[0] if len(names) == 1 else "[" + ", ".join(names) + "]")

    @property
    def pad_hw(self) -> tuple[int, int]:
        return self.pad[0], self.pad[2]

    @property
    def pad_lrtb(self) -> tuple[int, int, int, int]:
        """The order `torch.nn.functional.pad` takes for the last two (H, W) axes."""
        top, bottom, left, right = self.pad
        return left, right, top, bottom

    @property
    def strides_by_hand(self) -> bool:
        """Keras: TF's depthwise kernels (dw, sep's first half) take only equal strides. As the back-end
        does, such a layer is built padded by hand, at stride 1 and `valid`, then subsampled."""
        return self.layer.op in ("dw", "sep") and self.layer.stride[0] != self.layer.stride[1]

    @property
    def pad_pairs(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)), as keras.layers.ZeroPadding2D takes it."""
        top, bottom, left, right = self.pad
        return (top, bottom), (left, right)

    @property
    def padded(self) -> bool:
        return any(self.pad)


def _context(model: Model, analysis: Analysis) -> dict:
    consumers: dict[int, list[int]] = {i: [] for i in range(len(model.layers) + 1)}
    for layer in model.layers:
        for i in layer.inputs:
            consumers[i].append(layer.index)
    var = {0: "inputs"}
    for layer in model.layers:
        # a tensor read only by the next layer (or by none: the output) flows through `x`;
        # one read elsewhere or twice keeps its own name until its last reader
        var[layer.index] = "x" if consumers[layer.index] in ([layer.index + 1], []) else f"x{layer.index:02d}"
    globals_ = _global_layers(model)
    attrs = _UniqueNames()
    views = []
    for layer, stats in zip(model.layers, analysis.rows):
        attr = attrs.take(layer.name)
        post = tuple((name, attrs.take(name), p) for name, p in zip(_post_names(layer), layer.post))
        pad = _same_padding(layer)
        views.append(LayerView(
            layer=layer, stats=stats, var=var[layer.index], inputs=tuple(var[i] for i in layer.inputs),
            attr=attr, post=post,
            where=f"line {layer.where.line}: {layer.text}" + (f"   [block {layer.block}]" if layer.block else ""),
            analysis=_analysis_text(layer, stats, layer.index in globals_),
            cin=layer.input_shape[-1], pad=pad, symmetric=_symmetric(pad),
            branches=layer.inputs != (layer.index - 1,) or consumers[layer.index - 1] != [layer.index]))
    final = analysis.final
    ops = {layer.op for layer in model.layers}
    return dict(
        model=model, views=views, output=var[model.layers[-1].index],
        class_name=_class_name(model.name),
        spec=model.file,
        summary=_summary(model, analysis, final),
        uses_sep="sep" in ops,
        uses_avg_same=any(v.layer.op == "avgpool" and v.padded and not v.symmetric for v in views),
        uses_functional=any(v.padded and not v.symmetric and v.layer.op != "avgpool" for v in views),
        activations={name: Code(module) for name, module in TORCH_ACTIVATIONS.items()},
        nchw_shape=_nchw,
    )


def _summary(model: Model, analysis: Analysis, final: LayerStats) -> list[str]:
    h, w, c = model.input_shape
    lines = [f"model {model.name}   input {h}x{w}x{c}" + (f"   classes {model.classes}" if model.classes else ""),
             f"params {analysis.params:,} (trainable {analysis.trainable_params:,}, non-trainable "
             f"{analysis.params - analysis.trainable_params:,})   MACs {analysis.macs:,}"]
    if final.index:
        lines.append(f"final receptive field {_pair(final.rf)} (jump {_pair(final.jump)}) at layer {final.index}")
    return lines


def _global_layers(model: Model) -> set[int]:
    """Layers at or after a global op (gap, flatten) on their path: every unit sees the whole input."""
    found: set[int] = set()
    for layer in model.layers:
        if layer.op in GLOBAL_OPS or any(i in found for i in layer.inputs):
            found.add(layer.index)
    return found


def _analysis_text(layer: Layer, stats: LayerStats, is_global: bool) -> str:
    parts = [f"out {_shape(layer.output_shape)}"]
    if is_global:
        parts.append("rf global")
    else:
        start = tuple(_num(s) for s in stats.start)
        parts += [f"rf {_pair(stats.rf)}", f"jump {_pair(stats.jump)}", f"start {_pair(start)}"]
    if stats.params:
        parts.append(f"params {stats.params:,}")
    return "  ".join(parts)


def _same_padding(layer: Layer) -> tuple[int, int, int, int]:
    """TF SAME padding of a window op as (top, bottom, left, right), from the IR's shapes."""
    if layer.op not in CONV_OPS + POOL_OPS or layer.padding != "same":
        return (0, 0, 0, 0)
    pads = []
    for a in (0, 1):
        n, out = layer.input_shape[a], layer.output_shape[a]
        k_eff = geometry.effective_kernel(layer.kernel[a], layer.dilation[a])
        total = max((out - 1) * layer.stride[a] + k_eff - n, 0)
        before = geometry.pad_before(n, layer.kernel[a], layer.stride[a], layer.dilation[a], "same")
        assert before == total // 2, (layer.name, before, total)
        pads += [before, total - before]
    return tuple(pads)


def _symmetric(pad: tuple[int, int, int, int]) -> bool:
    return pad[0] == pad[1] and pad[2] == pad[3]


def _post_names(layer: Layer) -> list[str]:
    """Keras layer names of the post-ops, as `backends.keras` gives them (`l03_sep64_bn`, `_bn2` if repeated)."""
    names = []
    for n, post in enumerate(layer.post):
        suffix = _suffix(post)
        same = [p for p in layer.post[:n] if _suffix(p) == suffix]  # `drop .1 drop .2`: _drop, _drop2
        names.append(f"{layer.name}_{suffix}{len(same) + 1 if same else ''}")
    return names


def _suffix(post) -> str:
    return {"drop": "drop", "bn": "bn"}.get(post.kind) or post.activation


class _UniqueNames:
    """Python identifiers for torch attributes: the Keras name where it is one, made unique."""

    def __init__(self):
        self.used: set[str] = set()

    def take(self, name: str) -> str:
        ident = re.sub(r"\W", "_", name, flags=re.ASCII)
        if not ident or ident[0].isdigit() or keyword.iskeyword(ident) or not ident.isidentifier():
            ident = f"layer_{ident}"
        candidate, n = ident, 2
        while candidate in self.used:
            candidate, n = f"{ident}_{n}", n + 1
        self.used.add(candidate)
        return candidate


def _class_name(model_name: str) -> str:
    """`mnist_lenet` -> `MnistLenet`; always a valid class name that shadows nothing the file uses."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", model_name) if w]
    name = "".join(w[0].upper() + w[1:] for w in words)
    if not name or name[0].isdigit():
        name = "Model" + name
    if keyword.iskeyword(name) or name in _RESERVED:
        name += "Model"
    return name


def _nchw(shape) -> str:
    return "(batch, " + ", ".join(str(d) for d in ((shape[2], shape[0], shape[1]) if len(shape) == 3 else shape)) + ")"


# ---------------------------------------------------------------- the Jinja2 environment

class Code(str):
    """Text a filter made safe to place in the generated source."""


def _finalize(value):
    if isinstance(value, Code):
        return value
    if isinstance(value, int):  # bool is an int: True/False are literals too
        return str(value)
    raise TypeError(f"template emitted {type(value).__name__} {value!r} without a filter (py, ident, comment)")


def py_literal(value) -> Code:
    """A Python literal for a str, number, bool, None or a tuple/list of them; checked by round trip."""
    text = _literal(value)
    if ast.literal_eval(text) != value:
        raise ValueError(f"cannot write {value!r} as a Python literal")
    return Code(text)


def _literal(value) -> str:
    if value is None or isinstance(value, bool | int):
        return repr(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} as a Python literal")
        return repr(value)
    if isinstance(value, str):
        text = repr(value)
        if text.startswith("'") and '"' not in text:  # prefer "double quotes", as black writes them
            text = '"' + text[1:-1] + '"'
        return text
    if isinstance(value, tuple):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if isinstance(value, list):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    raise TypeError(f"cannot write a {type(value).__name__} as a Python literal")


def py_size(value) -> Code:
    """A kernel/stride pair as torch writes it: `3` when square, `(5, 1)` otherwise."""
    a, b = value
    return py_literal(a) if a == b else py_literal((a, b))


def identifier(value) -> Code:
    if not isinstance(value, str) or not value.isidentifier() or keyword.iskeyword(value) or not value.isascii():
        raise ValueError(f"{value!r} is not a safe Python identifier")
    return Code(value)


def comment_text(value) -> Code:
    """One line for a `#` comment: control, format (bidi) and line/paragraph separator characters removed."""
    text = "".join(ch if unicodedata.category(ch)[0] != "C" and unicodedata.category(ch) not in ("Zl", "Zp")
                   else " " for ch in str(value))
    return Code(text.rstrip())


def _one_line(text: str) -> str:
    return str(comment_text(text))


def _environment():
    import jinja2
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=False,  # Python, not HTML: safety comes from the filters and _finalize
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(py=py_literal, size=py_size, ident=identifier, comment=comment_text)
    return env

