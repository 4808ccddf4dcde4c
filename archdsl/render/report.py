"""`archdsl report FILE [RUN_DIR] -o report.html|report.md`: one page about a model (and a run).

What it holds: the model header (name, input, classes, file, totals), the status of each
`assert`, the analysis warnings, the RF table, the diagram, params and MACs per layer as
bars, and, given a run directory, the final metrics and the training curves (loss,
accuracy and lr per epoch, train vs val).

The page is made by Jinja2 templates (`templates/report.html.j2`, `report.md.j2`) from a
context this module builds; the HTML is self-contained (CSS, inline SVG; no script, no
external asset). User text reaches the page in many places (the file path, comments,
block names, a run's metrics), so:

- the HTML template autoescapes; the only `Markup` it gets is SVG built from escaped
  parts (`charts`) or graphviz' SVG re-serialised through an XML parser that keeps only
  drawing elements (`safe_text.sanitize_svg`);
- the Markdown template has no HTML escaping but escapes text with `md` / `md_code`
  (`safe_text`).

The run directory is read by `run_reader`, which turns what is missing or odd into notes, and
shown by `report_training`.

The Markdown form cannot inline SVG on GitHub, so its pictures (the diagram, the curves)
are written beside it: `report.md` + `report_files/diagram.svg`. Every file is written
atomically and none over an existing one; the report itself is written last.
"""
from __future__ import annotations

import errno
import functools
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from ..version import __version__
from . import charts, report_training
from ..analysis import Analysis, AssertionResult, check_assertions
from ..errors import ArchError, RunError, UsageError
from ..ir import Model
from ..runs.reader import Run, read_run, read_text
from ..safe_text import md_code, md_fence, md_text, sanitize_svg, terminal_text

TEMPLATES = Path(__file__).parent / "templates"
FORMATS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md"}


def run_report(args, erf: dict | None = None) -> int:
    """`erf`: what `training.effective_rf.report_section` measured, for `--erf` (the command line measures it:
    it needs TensorFlow, which renderers do not import)."""
    out = Path(args.output)
    fmt = report_format(out)
    from ..fileio import check_target
    check_target(out, overwrite=False)  # refuse before any work
    from ..analysis import analyze
    from ..language import load
    model = load(args.file)
    analysis = analyze(model)
    run = read_run(args.run_dir) if args.run_dir is not None else None  # "" is an error, not "no run"
    report = build(model, analysis, run, fmt)
    report.erf = erf_section(erf) if erf else None
    for message in report.stderr + _other_spec(model, run, args.run_dir):
        print(f"warning: {terminal_text(message)}", file=sys.stderr)
    if fmt == "html":
        from ..fileio import atomic_write_text
        atomic_write_text(out, render_html(report), overwrite=False)
    else:
        write_markdown(report, out)
    print(f"wrote {terminal_text(out)}")
    return 0


def _other_spec(model: Model, run: Run | None, run_dir) -> list[str]:
    """The report's note that the run is of another spec (or another version of it), said on the terminal too."""
    if run is None:
        return []
    trained = run.metrics.get("spec")
    if isinstance(trained, str) and trained != model.name:
        return [f"the run {run_dir} trained model '{trained}', and {model.file} is model '{model.name}': "
                "the report shows that run's curves and metrics beside this spec"]
    if run.spec_text is not None and read_text(model.file) not in (None, run.spec_text):
        return [f"the run {run_dir} trained another version of {model.file} (its spec.arch differs): "
                "the report's curves are of the run's version"]
    return []


def report_format(out: Path) -> str:
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        if out.name.startswith(".") and not out.suffix:  # Path(".html") has no suffix: a name with no stem
            raise UsageError(f"cannot tell the report format of {terminal_text(out)}: the name is only an extension, "
                             "with nothing before the dot", hint="write e.g. -o report.html or -o report.md",
                             code="E640")
        what = f"extension '{terminal_text(out.suffix)}'" if out.suffix else "no extension"
        raise UsageError(f"cannot tell the report format of {terminal_text(out)}: it has {what}",
                         hint=f"write -o {terminal_text(out.with_suffix('.html').name)} or "
                              f"-o {terminal_text(out.with_suffix('.md').name)}",
                         code="E640")
    return fmt


# --- what the report shows ------------------------------------------------------------------

@dataclass
class Report:
    fmt: str
    model: dict
    columns: list[dict]                  # RF table: {"name", "align"}
    rows: list[dict]                     # {"cells", "index", "final" (the final rf's row), "global", "beyond"}
    beyond: dict                         # `_beyond`'s answers -> the mark a row's rf gets
    table_notes: list[str]               # what the table's marks and labels mean, those it uses
    asserts: list[dict]
    warnings: list[str]
    costs: dict
    memory: dict                         # activation memory per layer and the peak, flash (`_memory`)
    diagram: dict                        # {"svg": Markup|None, "ascii": str|None, "missing": str|None}
    training: dict | None
    erf: dict | None = None              # `--erf`: the deepest spatial layer's ERF, initial and trained (`erf_section`)
    stderr: list[str] = field(default_factory=list)  # warnings for the terminal
    version: str = __version__


def build(model: Model, analysis: Analysis, run: Run | None, fmt: str) -> Report:
    from .tables import layer_cells, layer_columns
    results = check_assertions(analysis)
    columns = [{"name": c, "label": f"{c} ({AXES[c]})" if c in AXES else c,
                "align": "left" if c in ("layer", "output", "block") else "right"}
               for c in layer_columns(analysis)]
    final = analysis.final
    rows = [{"cells": cells, "final": layer.index == final.index, "index": layer.index,
             "global": cells[4] == "global", "beyond": None if cells[4] == "global" else _beyond(row.rf, model)}
            for cells, layer, row in zip(layer_cells(analysis), model.layers, analysis.rows)]
    stderr: list[str] = []
    report = Report(fmt=fmt, model=_header(model, analysis), columns=columns, rows=rows, beyond=BEYOND,
                    table_notes=_table_notes(model, rows),
                    asserts=[_assert(r) for r in results], warnings=list(analysis.warnings),
                    costs=_costs(model, analysis), memory=_memory(model, analysis), diagram=_diagram(model, analysis, stderr),
                    training=report_training.training(run, model) if run else None, stderr=stderr)
    failed = [a for a in report.asserts if not a["ok"]]
    if failed:
        stderr.append(f"{len(failed)} assert{'s' if len(failed) > 1 else ''} of {model.file} "
                      f"do{'es' if len(failed) == 1 else ''} not hold (shown in the report)")
    return report


# the table's columns whose sizes are pairs or shapes, and the order of their numbers: `39x43` is 39 rows
# (height) by 43 columns (width), as everywhere in archdsl; a square pair is written once (`33`)
AXES = {"output": "HxWxC", "rf": "HxW", "jump": "HxW", "start": "HxW"}
# the marks of a receptive field larger than the input: the whole input, or past it along one axis
BEYOND = {"both": "⊇ input", "height": "taller than input", "width": "wider than input"}


def _beyond(rf: tuple[int, int], model: Model) -> str | None:
    """How a layer's receptive field compares with the input: "both" when it is as tall and as wide as the input
    (its centre unit sees the whole image; W301 asks more, that the corner units do), "height" or "width" when
    it is larger along that axis only; None when it fits inside. Past the input, a field reaches into padding."""
    h, w = model.input_shape[:2]
    if rf[0] >= h and rf[1] >= w:
        return "both"
    if rf[0] > h:
        return "height"
    if rf[1] > w:
        return "width"
    return None


def _table_notes(model: Model, rows: list[dict]) -> list[str]:
    from .draw import REPEAT_LABEL, block_caption
    h, w = model.input_shape[:2]
    kinds = {row["beyond"] for row in rows if row["beyond"]}
    notes = []
    if "both" in kinds:
        notes.append(f"{BEYOND['both']}: the receptive field is at least the {h}x{w} input, so a unit at the centre "
                     "sees all of it; units toward an edge see part of it and padding")
    for axis, size in (("height", h), ("width", w)):
        if axis in kinds:
            notes.append(f"{BEYOND[axis]}: the receptive field is more than the input's {size} pixels {axis}wise, "
                         "so part of every unit's field is padding")
    repeat = next((layer.block.split("/")[-1] for layer in model.layers
                   if layer.block and REPEAT_LABEL.fullmatch(layer.block.split("/")[-1])), None)
    if repeat:
        notes.append(f"block {repeat}: the layers of a repeat, drawn as “{block_caption(repeat)}”; "
                     "name(args)#n is the n-th use of a block")
    return notes


def _header(model: Model, analysis: Analysis) -> dict:
    from ..display import pair as _pair, shape as _shape
    final = analysis.final
    source = read_text(model.file)
    return {
        "name": model.name, "file": model.file, "input": _shape(model.input_shape),
        "classes": model.classes, "layers": len(model.layers), "output": _shape(model.output.output_shape),
        "params": f"{analysis.params:,}", "trainable": f"{analysis.trainable_params:,}",
        "non_trainable": f"{analysis.params - analysis.trainable_params:,}", "macs": f"{analysis.macs:,}",
        "macs_short": _short(analysis.macs), "params_short": _short(analysis.params),
        "rf": _pair(final.rf), "jump": _pair(final.jump), "rf_layer": final.index,
        "input_hw": f"{model.input_shape[0]}x{model.input_shape[1]}",
        "description": _leading_comment(source) if source else "", "source": source,
    }


def _leading_comment(source: str) -> str:
    """The comment lines at the top of a spec: what its author says the model is."""
    lines = []
    for line in source.split("\n"):
        stripped = line.strip()
        if not stripped.startswith("#"):
            if stripped or lines:
                break
            continue
        lines.append(stripped[1:].strip())
    return " ".join(line for line in lines if line)


def _assert(r: AssertionResult) -> dict:
    if isinstance(r.actual, (list, tuple)):
        actual = ", ".join(str(a) for a in r.actual)
        detail = actual if r.ok else f"uses {actual}"
    else:
        actual = f"{r.actual:,}"
        detail = f"{r.assertion.metric} is {actual}"
    return {"text": r.assertion.text, "line": r.assertion.where.line, "ok": r.ok, "actual": actual,
            "detail": detail}


def _costs(model: Model, analysis: Analysis) -> dict:
    """Params and MACs of the layers that have either, with bar lengths relative to the largest."""
    top_params = max((r.params for r in analysis.rows), default=0) or 1
    top_macs = max((r.macs for r in analysis.rows), default=0) or 1
    total_params, total_macs = analysis.params or 1, analysis.macs or 1
    rows = []
    for layer, r in zip(model.layers, analysis.rows):
        if not (r.params or r.macs):
            continue
        rows.append({"index": layer.index, "text": layer.text, "block": layer.block or "",
                     "params": f"{r.params:,}", "macs": f"{r.macs:,}", "macs_short": _short(r.macs),
                     "params_bar": 100 * r.params / top_params, "macs_bar": 100 * r.macs / top_macs,
                     "params_share": f"{100 * r.params / total_params:.1f} %",
                     "macs_share": f"{100 * r.macs / total_macs:.1f} %",
                     "params_text_bar": charts.text_bar(r.params / top_params, 16),
                     "macs_text_bar": charts.text_bar(r.macs / top_macs, 16)})
    return {"rows": rows, "omitted": len(model.layers) - len(rows)}


def _memory(model: Model, analysis: Analysis) -> dict:
    """Bytes each layer keeps alive at int8 (bars relative to the peak, the peak marked), and the totals."""
    mem = analysis.memory
    rows = [{"index": layer.index, "text": layer.text, "output": f"{m.output_elements:,}",
             "alive": f"{m.alive_elements:,}", "bar": 100 * m.alive_elements / (mem.peak_elements or 1),
             "text_bar": charts.text_bar(m.alive_elements / (mem.peak_elements or 1), 16),
             "peak": m.index == mem.peak.index}
            for layer, m in zip(model.layers, mem.layers)]
    return {"rows": rows, "peak": f"{mem.peak_elements:,}", "peak_short": _short(mem.peak_elements),
            "peak_float32": f"{mem.peak_elements * 4:,}", "peak_layer": mem.peak.index,
            "flash": f"{mem.flash_int8:,}", "flash_short": _short(mem.flash_int8),
            "flash_float32": f"{mem.flash_float32:,}"}


def erf_section(measured: dict) -> dict:
    """The report's ERF pictures and numbers: initial beside trained, of the deepest spatial layer."""
    from ..display import pair
    from .erf import PERCENTS, heatmap_svg
    sides = []
    for key in ("initial", "trained"):
        layer = measured[key]
        s = layer.stats
        sides.append({"name": key, "source": measured[f"{key}_source"], "svg": heatmap_svg(layer),
                      "widths": {p: pair(s.widths[p]) if s.centre else "-" for p in PERCENTS},
                      "ratio": "/".join(f"{r:.2f}" for r in s.ratio(90)) if s.centre else "-"})
    layer = measured["trained"]
    return {"index": layer.stats.index, "text": layer.text, "rf": pair(layer.stats.rf), "sides": sides,
            "clipped": any(layer.stats.field_clipped)}


def _short(n: int) -> str:
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{suffix}"
    return str(n)


# --- the diagram ----------------------------------------------------------------------------

def _diagram(model: Model, analysis: Analysis, stderr: list[str]) -> dict:
    from .ascii import draw
    ascii_drawing = draw(model, analysis)
    try:
        from . import graphviz as gv
    except ImportError:  # the Python package itself
        missing = "the diagram needs the `graphviz` Python package (pip install graphviz)"
        stderr.append(missing)
        return {"svg": None, "ascii": ascii_drawing, "missing": missing}
    try:
        svg = gv.render_svg(model, analysis)
    except gv.DotNotFound:
        missing = f"the graphviz program `dot` is not installed, so the diagram could not be drawn; {gv.INSTALL_HINT}"
        stderr.append(missing)
        return {"svg": None, "ascii": ascii_drawing, "missing": missing}
    except ArchError as exc:
        missing = f"the diagram could not be drawn: {exc.message}"
        stderr.append(missing)
        return {"svg": None, "ascii": ascii_drawing, "missing": missing}
    return {"svg": sanitize_svg(svg, css_class="diagram"), "ascii": ascii_drawing, "missing": None}


# --- rendering ------------------------------------------------------------------------------

@functools.lru_cache(maxsize=None)
def _environment():
    """One environment a process: it caches the compiled templates."""
    import jinja2
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        # HTML templates escape every value that is not Markup; the Markdown one escapes with `md`
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm", "xml", "html.j2"),
                                            default_for_string=True, default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["md"] = md_text  # text at a line's start (or after `> `, `- `)
    env.filters["md_inline"] = lambda s: md_text(s, at_line_start=False)  # in a table cell, or mid-line
    env.filters["md_code"] = md_code
    env.filters["fence"] = md_fence
    env.filters["url"] = lambda s: quote(str(s))
    env.filters["num"] = lambda v: f"{v:.2f}"
    return env


def render_html(report: Report) -> str:
    return _environment().get_template("report.html.j2").render(r=report)


def render_markdown(report: Report, files_dir: str) -> tuple[str, dict[str, str]]:
    """The Markdown text and the companion files (name -> SVG text) it links to from `files_dir`."""
    files = {}
    if report.diagram["svg"] is not None:
        files["diagram.svg"] = str(report.diagram["svg"])
    for curve in (report.training or {}).get("curves", []):
        files[f"{curve['name']}.svg"] = str(curve["svg"])
    for side in (report.erf or {}).get("sides", []):
        files[f"erf_{side['name']}.svg"] = str(side["svg"])
    text = _environment().get_template("report.md.j2").render(r=report, files_dir=files_dir, files=files)
    return text, files


def write_markdown(report: Report, out: Path) -> None:
    """The companion pictures first, into `<stem>_files/`, then the report: a reader never finds a report
    whose pictures are missing. Nothing existing is replaced, no link is written through; on failure
    what was written is removed."""
    from ..fileio import atomic_write_text, check_target
    folder = out.parent / f"{out.stem}_files"
    text, files = render_markdown(report, folder.name)
    if folder.is_symlink():  # refused as a link at the output file is: nothing is written where it points
        raise UsageError(f"{terminal_text(folder)} is a symbolic link; archdsl does not write through it",
                         hint="choose another report name, or remove the link first", code="E641")
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{terminal_text(folder)} is not a folder; the report's pictures go there",
                         hint="choose another report name", code="E641")
    if folder.is_dir():
        for name in files:  # refuse before writing anything
            check_target(folder / name, overwrite=False)
    made_folder = False
    written: list[Path] = []
    try:
        if files:
            if not folder.exists():
                try:
                    folder.mkdir()
                except OSError as exc:
                    hint = (f"{terminal_text(out.parent)} is not a folder; write the report into one"
                            if exc.errno == errno.ENOTDIR else "check free disk space and permissions")
                    raise RunError(f"cannot create {terminal_text(folder)}: {exc.strerror or exc}", hint=hint,
                                   code="E501") from None
                made_folder = True
            for name, data in files.items():
                atomic_write_text(folder / name, data, overwrite=False)
                written.append(folder / name)
        atomic_write_text(out, text, overwrite=False)
    except BaseException:
        for p in written:
            p.unlink(missing_ok=True)
        if made_folder:
            try:
                folder.rmdir()
            except OSError:
                pass
        raise
