"""`archdsl export`: IR -> a readable, standalone Python file that builds the model.

The file's frame lives in Jinja2 templates (`templates/<target>_model.py.j2`); each op's
own lines are its registry class's snippets (`Op.keras_source`, `Op.torch_init`,
`Op.torch_forward`), rendered here in the same environment. This module chooses the target,
works out what the snippets need (tensor variables, TF padding per layer, the analysis as
comment text) and writes the result atomically. An op without a snippet for the target is
refused by name before anything is written.

Generated code must never carry a spec's text as code. The environment enforces it:
every `{{ ... }}` must go through a filter that makes it safe (`py`: a Python literal,
`ident`: a checked identifier, `comment`: one line of text without control
characters) or be a plain int; anything else fails the export (`_finalize`).
"""
from __future__ import annotations

import ast
import functools
import keyword
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from ..analysis import Analysis, LayerStats, analyze
from ..errors import RunError, UsageError, did_you_mean, one_of
from ..ir import Layer, Model
from ..ops import op_of, post_name, post_step
from ..ops.elementwise import TORCH_ACTIVATIONS
from ..display import num as _num, pair as _pair, shape as _shape

TEMPLATES = Path(__file__).parent / "templates"

# export target -> its template; the keys are what `--to` accepts
TARGETS = {
    "keras": "keras_model.py.j2",
    "pytorch": "pytorch_model.py.j2",
}
# the targets that convert the model itself (training/deploy.py: they need TensorFlow); named in E630's hint
CONVERTED_TARGETS = ("tflite", "onnx")
# the op snippet a target cannot do without
_REQUIRED_SNIPPET = {"keras": "keras_source", "pytorch": "torch_forward"}

# other names people use for the targets: only for the hint, `--to` takes the names above
_HINT_ALIASES = {"torch": "pytorch", "pt": "pytorch", "tf": "keras", "tensorflow": "keras", "tf.keras": "keras",
                 "tf-lite": "tflite", "litert": "tflite", "lite": "tflite"}
# names the generated files define or import; a model's class must not shadow them
_RESERVED = {"SeparableConv2d", "AvgPool2dSame", "BatchNormScaleCenter", "build_model", "torch", "nn", "F", "keras",
             "layers"}


def run_export(args) -> int:
    """The `export` command: validate the command line, then load, render and write."""
    target = target_of(args.to)
    output = _check_output(args.output)
    from ..language import load
    model = load(args.file)
    source = render(model, target)
    from ..fileio import atomic_write_text
    try:
        atomic_write_text(output, source, overwrite=False)
    except OSError as exc:  # e.g. the "folder" is a file: fileio's temporary file cannot be made
        raise RunError(f"cannot write {_one_line(str(output))}: {exc.strerror or exc}",
                       hint="check the output folder and its permissions", code="E501") from None
    from ..safe_text import terminal_text
    print(f"wrote {terminal_text(output)} ({target} code for model {_one_line(model.name)}, "
          f"{len(model.layers)} layers)")
    import importlib.util
    import sys
    if target == "pytorch" and importlib.util.find_spec("torch") is None:
        print(f"note: running {terminal_text(output)} needs PyTorch, which is not installed here: "
              "pip install 'archdsl[torch]' (or pip install torch)", file=sys.stderr)
    return 0


def target_of(name: str) -> str:
    if name in TARGETS:
        return name
    alias = _HINT_ALIASES.get(name.lower())
    every = [*TARGETS, *CONVERTED_TARGETS]
    hint = f"did you mean '{alias}'?" if alias else did_you_mean(name, every) or one_of(every)
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
    unsupported = sorted({layer.op for layer in model.layers
                          if not op_of(layer).implements(_REQUIRED_SNIPPET[target])})
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
    source = env.get_template(TARGETS[target]).render(**_context(model, analysis, env))
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
    code: dict = field(default_factory=dict)  # snippet name -> the op's lines, rendered (see _render_snippets)

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
    def pad_pairs(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """((top, bottom), (left, right)), as keras.layers.ZeroPadding2D takes it."""
        top, bottom, left, right = self.pad
        return (top, bottom), (left, right)

    @property
    def padded(self) -> bool:
        return any(self.pad)

    @property
    def explicit(self) -> bool:
        """`pad N`: zeros added before a `valid` window (Keras: a ZeroPadding2D first)."""
        return self.layer.padding == "explicit"

    @property
    def keras_padding(self) -> str:
        return "valid" if self.explicit else self.layer.padding

    @property
    def after_pad(self) -> "Code":
        """What a window op reads in Keras: the padded tensor after an explicit `pad`, else its input."""
        return identifier(self.var) if self.explicit else self.src


def _context(model: Model, analysis: Analysis, env) -> dict:
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
        post = tuple((name, attrs.take(name), p)
                     for name, p in zip((post_name(layer, n) for n in range(len(layer.post))), layer.post))
        pad = _padding(layer)
        views.append(LayerView(
            layer=layer, stats=stats, var=var[layer.index], inputs=tuple(var[i] for i in layer.inputs),
            attr=attr, post=post,
            where=f"line {layer.where.line}: {layer.text}" + (f"   [block {layer.block}]" if layer.block else ""),
            analysis=_analysis_text(layer, stats, layer.index in globals_),
            cin=layer.input_shape[-1], pad=pad, symmetric=_symmetric(pad),
            branches=layer.inputs != (layer.index - 1,) or consumers[layer.index - 1] != [layer.index]))
        _render_snippets(views[-1], env)
    final = analysis.final
    return dict(
        model=model, views=views, output=var[model.layers[-1].index],
        class_name=_class_name(model.name),
        spec=model.file,
        summary=_summary(model, analysis, final),
        helpers={need for v in views for need in op_of(v.layer).torch_needs(v)}
        | {need for v in views for _, _, p in v.post for need in post_step(p).post_torch_needs(p)},
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
        if op_of(layer).is_global or any(i in found for i in layer.inputs):
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


def _padding(layer: Layer) -> tuple[int, int, int, int]:
    """A window op's padding as (top, bottom, left, right); zeros for other ops."""
    windows = [op_of(layer).window(layer, a) for a in (0, 1)]
    return (0, 0, 0, 0) if None in windows else (*windows[0][4:], *windows[1][4:])


def _symmetric(pad: tuple[int, int, int, int]) -> bool:
    return pad[0] == pad[1] and pad[2] == pad[3]


_SNIPPETS = {  # name -> (where the op keeps it, indentation in the generated file)
    "keras": ("keras_source", 4), "torch_init": ("torch_init", 8), "torch_forward": ("torch_forward", 8),
}
_POST_SNIPPETS = {"keras": ("post_keras_source", 4), "torch_init": ("post_torch_init", 8)}


def _render_snippets(view: LayerView, env) -> None:
    """The op's lines for each snippet, and each post-op step's, rendered in the export's safe environment."""
    kind = op_of(view.layer)
    for name, (hook, indent) in _SNIPPETS.items():
        view.code[name] = _render(env, getattr(kind, hook), indent, v=view, l=view.layer)
    for name, (hook, indent) in _POST_SNIPPETS.items():
        view.code["post_" + name] = [_render(env, getattr(post_step(p), hook), indent, v=view, l=view.layer,
                                             p=p, name=keras_name, attr=attr)
                                     for keras_name, attr, p in view.post]


def _render(env, snippet: str | None, indent: int, **names) -> "Code | None":
    if snippet is None:
        return None
    template = _COMPILED.get(snippet) or _COMPILED.setdefault(snippet, env.from_string(snippet))
    text = template.render(activations={a: Code(m) for a, m in TORCH_ACTIVATIONS.items()}, **names)
    return Code("\n".join(" " * indent + line for line in text.splitlines() if line.strip()))


_COMPILED: dict = {}


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


def py_float_pair(value) -> Code:
    """A pair of whole numbers as floats, as torch's scale factors are written: `(2.0, 1.0)`."""
    return py_literal(tuple(float(v) for v in value))


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


@functools.cache
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
    env.filters.update(py=py_literal, size=py_size, ident=identifier, comment=comment_text, float_pair=py_float_pair)
    return env

