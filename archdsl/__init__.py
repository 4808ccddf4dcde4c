"""archdsl: a declarative architecture language and compiler for convolutional networks.

The Python API, documented in README.md ("Python API"), is the names in `__all__`:

    import archdsl
    model = archdsl.load("specs/best.arch")     # parse + resolve: the IR (archdsl.loads(text) for a string)
    space = archdsl.load_space("space.arch")    # a design space's variants, analysed (`archdsl space`)
    analysis = archdsl.analyze(model)           # per-layer rows, totals, final RF, warnings
    results = archdsl.check(analysis)           # the spec's asserts and whether each holds
    print(archdsl.table(analysis))              # "text" (the default), "json", "csv" or "markdown"
    keras_model = archdsl.to_keras(model)       # tf.keras (imports TensorFlow, only here)
    svg = archdsl.draw(model, "svg")            # "ascii" needs nothing; "svg", "png", "pdf" need graphviz
    source = archdsl.export(model, "pytorch")   # standalone Python source ("keras" or "pytorch")

Everything else is private: the subpackages (`archdsl.language`, `archdsl.analysis`, `archdsl.render`, ...)
and their functions may change without notice. The objects these functions return are public as far as
documented here and in the README: `Model` (`.name`, `.input_shape`, `.classes`, `.layers`, `.assertions`),
`Analysis` (`.model`, `.rows`, `.params`, `.trainable_params`, `.macs`, `.final`, `.warnings`, `.silenced`),
a warning (`SpecWarning`: `.code`, `.message`, `.hint`, `.span`, `.layers`, `.silenced_by`, `.render(source)`), a row
(`.index`, `.rf`, `.jump`, `.start`, `.params`, `.trainable_params`, `.macs`; rf, jump and start as (h, w))
and an assert's result (`.assertion.text`, `.assertion.where.line`, `.actual`, `.ok`).
A bad spec raises `archdsl.ArchError` (`.render(source)` gives the positioned message the CLI prints).

`import archdsl` is light: each function imports what it needs when called. TensorFlow is imported
only by `to_keras` (and the code that builds or trains a model); graphviz only by `draw` of a picture;
parsing, analysis and the tables never import either.

In Jupyter (or any running IPython), a `Model` or an `Analysis` shown in a cell displays as summary cards,
the RF table and the diagram: `import archdsl` registers IPython's formatters for them. `%load_ext archdsl`
adds the `%%arch NAME` cell magic (archdsl/render/notebook.py; docs/jupyter.md).
"""
from __future__ import annotations

import os
import sys

from .version import __version__

__all__ = ["load", "loads", "load_space", "loads_space", "analyze", "check", "table", "to_keras", "draw", "export",
           "ArchError", "SpecWarning", "Model", "Analysis", "TABLE_FORMATS", "DRAW_FORMATS", "EXPORT_TARGETS"]

TABLE_FORMATS = ("text", "json", "csv", "markdown")
DRAW_FORMATS = ("ascii", "svg", "dot", "png", "pdf")
EXPORT_TARGETS = ("keras", "pytorch")

# public types, imported on first use (the IR brings pydantic)
_LAZY = {"ArchError": ("archdsl.errors", "ArchError"), "SpecWarning": ("archdsl.errors", "SpecWarning"),
         "Model": ("archdsl.ir", "Model"),
         "Analysis": ("archdsl.analysis", "Analysis")}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'archdsl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def load(path: str | os.PathLike):
    """Parse and resolve the .arch file at `path`: the model (`archdsl.Model`)."""
    from . import language
    return language.load(path)


def loads(text: str, file: str = "<spec>"):
    """Parse and resolve spec text; `file` names it in error messages."""
    from . import language
    return language.loads(text, file)


def load_space(path: str | os.PathLike):
    """The design space in the .arch file at `path` (a spec with `choose` lines), every variant analysed as
    `archdsl space` does: `.variants` (in enumeration order), `.feasible`, `.ruled_out()` (assert -> count);
    a variant has `.index`, `.values()` (choice -> value), `.metrics` (params, macs, rf, ram, flash),
    `.failed` (its asserts that do not hold) and `.error`; `.model(variant)` is its `archdsl.Model`,
    `.text(variant)` the variant written as a spec."""
    from .analysis.space import explore
    from .fileio import shown_path
    from .language.parser import parse, read_source
    return explore(parse(read_source(path), shown_path(path)))


def loads_space(text: str, file: str = "<spec>"):
    """`load_space` of spec text; `file` names it in error messages."""
    from .analysis.space import explore
    from .language.parser import parse
    return explore(parse(text, file))


def analyze(model):
    """Receptive field, jump, start, params and MACs of every layer of `model`: an `archdsl.Analysis`."""
    from .analysis import analyze as _analyze
    return _analyze(model)


def check(analysis) -> list:
    """The model's asserts checked against `analysis`, in written order: each result has `.assertion`
    (`.text`, `.where.line`), `.actual` (the measured value) and `.ok`."""
    from .analysis import check_assertions
    return check_assertions(_analysis(analysis))


def table(analysis, fmt: str = "text", results: list | None = None) -> str:
    """The RF table of `analysis` (or of a model, analysed first) as `archdsl rf --format` prints it:
    "text" (also called "table", as on the command line), "json", "csv" or "markdown". The asserts' lines are
    included: `results` defaults to `check(analysis)`; pass `[]` to leave them out (CSV has none)."""
    from .render.tables import FORMATS
    name = "table" if fmt == "text" else fmt
    if name not in FORMATS:
        raise ValueError(f"unknown table format {fmt!r}: one of {', '.join(TABLE_FORMATS)}")
    return FORMATS[name](_analysis(analysis), results)


def to_keras(model, batchnorm: str = "keras"):
    """The untrained `keras.Model` of `model` (imports TensorFlow). `batchnorm="fused"`: archdsl's batch norm,
    the same function and weights as Keras' own, trained with TensorFlow's fused kernel."""
    from .keras_backend.compile import compile
    return compile(model, batchnorm=batchnorm)


def draw(model, fmt: str = "ascii", rankdir: str = "TB") -> str | bytes:
    """A diagram of `model`: "ascii" (text, no dependency), "svg" or "dot" (text), "png" or "pdf" (bytes).
    All but "ascii" need the graphviz package, and all but "dot" its `dot` program; `rankdir` "LR" lays a
    graphviz diagram out left to right."""
    if fmt not in DRAW_FORMATS:
        raise ValueError(f"unknown drawing format {fmt!r}: one of {', '.join(DRAW_FORMATS)}")
    analysis = analyze(model)
    if fmt == "ascii":
        from .render.ascii import draw as _draw
        return _draw(model, analysis)
    from .render import graphviz as gv
    data = gv.render(gv.to_digraph(model, analysis, rankdir), fmt)
    return data if fmt in ("png", "pdf") else data.decode("utf-8")


def export(model, target: str = "keras") -> str:
    """Standalone Python source that builds `model` in `target` ("keras" or "pytorch"), the analysis as a
    comment above each layer (what `archdsl export` writes)."""
    if target not in EXPORT_TARGETS:
        raise ValueError(f"unknown export target {target!r}: one of {', '.join(EXPORT_TARGETS)}")
    from .render.export import render
    return render(model, target)


def _analysis(analysis):
    """An Analysis as given, or a model's, analysed now."""
    from .analysis import Analysis as _Analysis
    return analysis if isinstance(analysis, _Analysis) else analyze(analysis)


def load_ipython_extension(ip) -> None:
    """`%load_ext archdsl`: models display as HTML in the notebook, and the `%%arch NAME` cell magic."""
    from .render.notebook import load_ipython_extension as load
    load(ip)


def _display_in_ipython() -> None:
    """Inside a running IPython (a notebook's kernel), models display richly from `import archdsl` on: IPython's
    formatters, registered by type name, import nothing until a model is shown. Elsewhere: nothing at all."""
    ipython = sys.modules.get("IPython")  # never imported here: a script without IPython pays nothing
    ip = ipython.get_ipython() if ipython is not None and hasattr(ipython, "get_ipython") else None
    if ip is not None:
        from .render.notebook import register
        register(ip)


_display_in_ipython()
