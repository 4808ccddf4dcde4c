"""archdsl in Jupyter: a model shown as a notebook cell's output, and the `%%arch` cell magic.

A model (`archdsl.Model`, or an `archdsl.Analysis`) is shown as the report's pieces: summary
cards, the RF table and the diagram (inline SVG, no script, no network; the ASCII drawing when
graphviz' `dot` is missing), in HTML, with Markdown (the table and the ASCII drawing) for front
ends that take no HTML.

How it reaches the notebook: IPython's own display formatters, registered for the types by name
(`for_type_by_name`, so nothing is imported until a model is shown), rather than `_repr_html_`
methods on the IR, which is the shared core and renders nothing. `register(ip)` registers them;
`import archdsl` calls it when it runs inside a live IPython (a notebook's kernel), and
`%load_ext archdsl` calls it and adds the `%%arch` magic:

    %%arch tiny --save tiny.arch
    input 32x32x3
    conv 3x3 16 same bn relu
    ...

parses the cell (a bad spec shows the command line's positioned message, not a traceback),
shows the model and binds it to `tiny` in the notebook; `--save` also writes the cell to a
file (after it parses), so `archdsl train` can read it. IPython is imported only here, inside
the functions a running IPython calls.

This module imports only the standard library when loaded (`import archdsl` loads it in a
kernel, and stays light); each function imports what it needs, as the API's functions do.
"""
from __future__ import annotations

import functools
import keyword
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ArchError, UsageError

if TYPE_CHECKING:
    from ..analysis import Analysis
    from ..ir import Model

# the types shown, by the module and name IPython finds them under (nothing imported to register them)
SHOWN_TYPES = (("archdsl.ir", "Model"), ("archdsl.analysis", "Analysis"))
CELL_FILE = "<cell>"  # a cell's name in error messages, when it is not saved to a file
USAGE = "%%arch [NAME] [--save FILE.arch]"


# --- what a model looks like in a notebook ---------------------------------------------------

def _analysed(shown: Model | Analysis) -> tuple[Model, Analysis]:
    from ..analysis import Analysis, analyze
    if isinstance(shown, Analysis):
        return shown.model, shown
    return shown, analyze(shown)


def model_html(shown: Model | Analysis) -> str:
    """The HTML of a model: cards (params, MACs, final rf, asserts), the RF table, the diagram."""
    from .report import build
    model, analysis = _analysed(shown)
    report = build(model, analysis, None, "html")
    return _environment().get_template("notebook.html.j2").render(r=report)


def model_markdown(shown: Model | Analysis) -> str:
    """The Markdown of a model: a header line, the RF table with its totals and asserts, the ASCII drawing."""
    from ..analysis import check_assertions
    from ..safe_text import md_code, md_fence, md_text
    from .ascii import draw
    from .tables import markdown_table
    model, analysis = _analysed(shown)
    results = check_assertions(analysis)
    table = markdown_table(analysis, results).split("\n", 1)[1].lstrip("\n")  # its own title line: ours says more
    final = analysis.final
    head = (f"**model {md_code(model.name, in_table=False)}** · input {md_text(_shape(model.input_shape), False)} · "
            f"{analysis.params:,} params · {analysis.macs:,} MACs · final rf {_pair(final.rf)} "
            f"(jump {_pair(final.jump)}) at layer {final.index}")
    warnings = "".join(f"- warning: {md_text(w, at_line_start=False)}\n" for w in analysis.warnings)
    return f"{head}\n\n{table.rstrip()}\n{warnings}\n{md_fence(draw(model, analysis))}\n"


def _shape(shape) -> str:
    from ..display import shape as display_shape
    return display_shape(shape)


def _pair(pair) -> str:
    from ..display import pair as display_pair
    return display_pair(pair)


class ModelView:
    """What `%%arch` displays: the model's HTML and Markdown, and its text table where only text is shown
    (a terminal IPython)."""

    def __init__(self, shown: Model | Analysis):
        self.model, self.analysis = _analysed(shown)

    def _repr_html_(self) -> str:
        return model_html(self.analysis)

    def _repr_markdown_(self) -> str:
        return model_markdown(self.analysis)

    def __repr__(self) -> str:
        from ..analysis import check_assertions
        from .tables import text_table
        return text_table(self.analysis, check_assertions(self.analysis))


@functools.cache
def _environment():
    import jinja2

    from .report import TEMPLATES
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                              undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


# --- IPython: formatters and the %%arch magic --------------------------------------------------

def register(ip) -> None:
    """Show models and analyses as HTML and Markdown in the IPython shell `ip` (idempotent)."""
    formatters = ip.display_formatter.formatters
    for module, name in SHOWN_TYPES:
        formatters["text/html"].for_type_by_name(module, name, model_html)
        formatters["text/markdown"].for_type_by_name(module, name, model_markdown)


def load_ipython_extension(ip) -> None:
    """`%load_ext archdsl`: the display, and the `%%arch` cell magic."""
    register(ip)
    ip.register_magic_function(functools.partial(arch_cell, ip=ip), magic_kind="cell", magic_name="arch")


def arch_cell(line: str, cell: str, ip=None) -> None:
    """`%%arch [NAME] [--save FILE.arch]`: the cell parsed, shown, bound to NAME, and with --save written to FILE."""
    from IPython.display import display
    try:
        name, save = _arguments(line)
        view = ModelView(_parse_cell(cell, save))
        if save is not None:
            _save_cell(save, cell)
    except ArchError as exc:
        raise SpecCellError(exc, cell) from None
    display(view)
    for w in view.analysis.warnings:  # on stderr, as `archdsl rf` says them
        print(w.render(cell), file=sys.stderr)
    if name is not None:
        (ip if ip is not None else _shell()).user_ns[name] = view.model


def _arguments(line: str) -> tuple[str | None, Path | None]:
    """NAME and --save FILE of the magic's line; a mistake is E601, as the command line's."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%%arch {line.strip()}: {exc}", hint=f"write {USAGE}", code="E601") from None
    name = save = None
    while words:
        word = words.pop(0)
        if word in ("--save", "-o"):
            if not words:
                raise UsageError(f"%%arch: {word} needs a file name", hint=f"write {USAGE}", code="E601")
            save = Path(words.pop(0))
        elif word.startswith("--save="):
            save = Path(word.split("=", 1)[1])
        elif word.startswith("-"):
            raise UsageError(f"%%arch: unknown option {word!r}", hint=f"write {USAGE}", code="E601")
        elif name is not None:
            raise UsageError(f"%%arch: one name only, got {name!r} and {word!r}", hint=f"write {USAGE}", code="E601")
        elif not word.isidentifier() or keyword.iskeyword(word):
            raise UsageError(f"%%arch: {word!r} cannot name a Python variable",
                             hint="a name of letters, digits and _, not starting with a digit, e.g. %%arch tiny",
                             code="E601")
        else:
            name = word
    if save is not None and save.suffix != ".arch":
        raise UsageError(f"%%arch --save {save}: a spec file ends in .arch", hint=f"write e.g. --save {save.stem or 'model'}.arch",
                         code="E601")
    return name, save


_WRITTEN: dict[Path, str] = {}  # file -> the text this kernel's %%arch last wrote there


def _save_cell(save: Path, cell: str) -> None:
    """Write the cell to `save`: a new file, or one this kernel's %%arch wrote and nobody changed since (running
    the cell again rewrites it). A file of the user's is never replaced."""
    from ..fileio import atomic_write_text, os_reason
    key = save.resolve()
    try:
        current = save.read_text(encoding="utf-8") if save.exists() else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"%%arch --save {save}: cannot read the file there ({os_reason(exc)})",
                         hint="save to another file", code="E603") from None
    if current is not None and current not in (cell, _WRITTEN.get(key)):
        raise UsageError(f"%%arch --save {save}: the file exists and was not written by this notebook's %%arch; "
                         "archdsl never overwrites", hint="save to another file, or remove that one first",
                         code="E603")
    if current != cell:
        atomic_write_text(save, cell, overwrite=True)
    _WRITTEN[key] = cell


def _parse_cell(cell: str, save: Path | None) -> Model:
    from ..language import loads
    file = str(save) if save is not None else CELL_FILE
    try:
        return loads(cell, file)
    except ArchError as exc:  # each message shows its line from the cell, not from a file of that name
        for error in getattr(exc, "errors", [exc]):
            error.source = cell if error.source is None else error.source
        raise


class SpecCellError(Exception):
    """A `%%arch` cell that does not parse: IPython shows `_render_traceback_`'s lines, the positioned message
    `archdsl check` prints, instead of a traceback; the cell still fails (a notebook run stops there)."""

    def __init__(self, error: ArchError, cell: str):
        self.error = error
        self.text = error.render(cell)
        super().__init__(self.text)

    def _render_traceback_(self) -> list[str]:
        return self.text.split("\n")


def _shell():
    from IPython import get_ipython
    return get_ipython()
