"""Presenters of an analysis: text table, JSON, CSV, Markdown.

Formatting (thousands separators, `3x3` for non-square values, column widths) lives
here, not in the analysis, as in Keras' summary_utils.

Every format says the same thing of a layer: a layer whose output is a vector (after gap or
flatten, `is_global`) sees the whole image, so it has no rf, jump or start of its own. The
table prints `global` there, JSON gives `"global": true` and nulls, CSV `global` in the rf
cells and empty jump and start cells.

Each presenter shows the spec's asserts with their results: pass `results` to show others
(`[]` for none); left out, they are the model's own asserts, checked here.

Warnings (said on stderr by the command line) agree across formats: the table and Markdown end with a
`silenced:` line for each warning the spec's `allow` silences, JSON lists every warning (code, message,
hint, line, layers, silenced), CSV's last column gives each layer's codes (`W301`, `W301 silenced`).
"""
from __future__ import annotations

import csv
import io
import json
from fractions import Fraction

from ..analysis import Analysis, AssertionResult, LayerStats, check_assertions
from ..analysis.memory import FLOAT32, INT8
from ..errors import SpecWarning
from ..ir import Layer
from ..display import num as _num, pair as _pair, shape as _shape

COLUMNS = ("#", "line", "layer", "output", "rf", "jump", "start", "params", "MACs")
MEMORY_COLUMNS = ("out int8", "alive int8")  # bytes of the layer's output, and of all it keeps alive


def render(analysis: Analysis, fmt: str = "table", results: list[AssertionResult] | None = None,
           memory: bool = False) -> str:
    """The analysis as `fmt` (table, json, csv or markdown); `results`: the asserts' results, by default the
    model's own asserts checked now (`[]` shows none); `memory`: with activation memory and flash (`rf --memory`)."""
    return FORMATS[fmt](analysis, results, memory)


def is_global(layer: Layer) -> bool:
    """A vector layer (after gap/flatten, on its own path): each unit sees the whole image, so rf, jump and start
    are not its own. The one rule of every format."""
    return not layer.spatial


def _results(analysis: Analysis, results: list[AssertionResult] | None) -> list[AssertionResult]:
    return check_assertions(analysis) if results is None else results


def to_dict(analysis: Analysis, results: list[AssertionResult] | None = None, memory: bool = False) -> dict:
    results = _results(analysis, results)
    m = analysis.model
    final = analysis.final
    return {**_with_memory({
        "name": m.name,
        "file": m.file,
        "input": list(m.input_shape),
        "classes": m.classes,
        "layers": [_layer_dict(layer, row) for layer, row in zip(m.layers, analysis.rows)],
        "total": {"params": analysis.params, "trainable_params": analysis.trainable_params,
                  "non_trainable_params": analysis.params - analysis.trainable_params, "macs": analysis.macs},
        "edges": [[i, layer.index] for layer in m.layers for i in layer.inputs],
        "final": {"layer": final.index, "rf": list(final.rf), "jump": list(final.jump)},
        "asserts": [{"assert": r.assertion.text, "line": r.assertion.where.line, "ok": r.ok,
                     "actual": r.actual} for r in results],
        # said and silenced alike, in layer order: what stderr says and the table's `silenced:` lines
        "warnings": [w.to_dict() for w in all_warnings(analysis)],
    }, analysis, memory)}


def _with_memory(table: dict, analysis: Analysis, memory: bool) -> dict:
    """`table` with each layer's memory (elements: bytes at int8; x4 at float32) and the totals, if asked."""
    if not memory:
        return table
    mem = analysis.memory
    for layer, m in zip(table["layers"], mem.layers):
        layer["memory"] = {"output_elements": m.output_elements, "alive_elements": m.alive_elements}
    table["memory"] = {"peak_elements": mem.peak_elements, "peak_layer": mem.peak.index,
                       "peak_bytes_int8": mem.peak_elements * INT8, "peak_bytes_float32": mem.peak_elements * FLOAT32,
                       "flash_bytes_int8": mem.flash_int8, "flash_bytes_float32": mem.flash_float32}
    return table


def all_warnings(analysis: Analysis) -> list[SpecWarning]:
    # a warning about a line rather than layers (W303, an unused allow) comes first
    return sorted(analysis.warnings + analysis.silenced, key=lambda w: (w.layers[0] if w.layers else 0, w.code))


def silenced_lines(analysis: Analysis) -> list[str]:
    """The table's note of each warning the spec silences, and by which line."""
    lines = []
    for w in analysis.silenced:
        layers = f"layer {w.layers[0]}" if len(w.layers) == 1 else f"layers {w.layers[0]}-{w.layers[-1]}"
        by = "allow" if any(a.line == w.silenced_by and a.whole_file for a in analysis.model.allows) else "# allow"
        lines.append(f"silenced: {w.code} on {layers} ({by} on line {w.silenced_by})")
    return lines


def _layer_dict(layer: Layer, row: LayerStats) -> dict:
    return {
        "index": layer.index, "name": layer.name, "line": layer.where.line, "op": layer.op, "text": layer.text,
        "inputs": list(layer.inputs), "block": layer.block,
        "kernel": list(layer.kernel) if layer.kernel else None,
        "stride": list(layer.stride) if layer.stride else None,
        "dilation": list(layer.dilation) if layer.dilation else None,
        "padding": layer.padding,
        "output_shape": list(layer.output_shape),
        "global": is_global(layer),
        **({"rf": None, "jump": None, "start": None} if is_global(layer) else
           {"rf": list(row.rf), "jump": list(row.jump), "start": [_num(s) for s in row.start]}),
        "params": row.params, "trainable_params": row.trainable_params, "macs": row.macs,
    }


def to_json(analysis: Analysis, results: list[AssertionResult] | None = None, memory: bool = False) -> str:
    # a jump below a pixel (after an upsampling) is a fraction: JSON writes it as its decimal
    return json.dumps(to_dict(analysis, _results(analysis, results), memory), indent=2, default=lambda x: float(x) if isinstance(x, Fraction)
                      else json.JSONEncoder().default(x))


def to_csv(analysis: Analysis, results: list[AssertionResult] | None = None, memory: bool = False) -> str:
    """One row a layer (the asserts are not rows: `results` is taken for a uniform signature)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["index", "line", "name", "op", "text", "output_shape", "rf_h", "rf_w", "jump_h", "jump_w",
                     "start_h", "start_w", "params", "trainable_params", "macs", "warnings"]
                    + (["output_elements", "alive_elements"] if memory else []))
    mem = {m.index: [m.output_elements, m.alive_elements] for m in analysis.memory.layers} if memory else {}
    codes: dict[int, list[str]] = {}  # layer -> its warnings' codes, `W301 silenced` for one the spec silences
    for w in all_warnings(analysis):
        for index in w.layers:
            codes.setdefault(index, []).append(w.code + (" silenced" if w.silenced else ""))
    for layer, row in zip(analysis.model.layers, analysis.rows):
        geometry = ["global", "global", "", "", "", ""] if is_global(layer) else \
            [*row.rf, *row.jump, *(_num(s) for s in row.start)]
        writer.writerow([layer.index, layer.where.line, layer.name, layer.op, layer.text, _shape(layer.output_shape),
                         *geometry, row.params, row.trainable_params, row.macs, "; ".join(codes.get(layer.index, [])),
                         *mem.get(layer.index, [])])
    return out.getvalue().rstrip("\n")


def layer_cells(analysis: Analysis, memory: bool = False) -> list[list[str]]:
    """The table's cells, a list a layer, as every format shows them (report's table too)."""
    rows = []
    mem = analysis.memory if memory else None
    graph, blocks = _is_graph(analysis), _has_blocks(analysis)  # once: a check a row made the table quadratic
    for layer, row in zip(analysis.model.layers, analysis.rows):
        if is_global(layer):
            geometry = ["global", "", ""]
        else:
            geometry = [_pair(row.rf), _pair(row.jump), _pair(tuple(_num(s) for s in row.start))]
        cells = [str(layer.index), str(layer.where.line), layer.text, _shape(layer.output_shape), *geometry,
                 f"{row.params:,}", f"{row.macs:,}"]
        if mem is not None:
            m = mem.layers[len(rows)]
            peak = "*" if m.index == mem.peak.index else ""
            cells += [f"{m.output_elements * INT8:,}", f"{peak}{m.alive_elements * INT8:,}"]
        if graph:  # where each layer reads from, when it is not simply the layer above
            cells.append(",".join(str(i) for i in layer.inputs))
        if blocks:
            cells.append(layer.block or "")
        rows.append(cells)
    return rows


def layer_columns(analysis: Analysis, memory: bool = False) -> tuple[str, ...]:
    """The table's column names: `from` only for a graph, `block` only where blocks were used."""
    return (COLUMNS + (MEMORY_COLUMNS if memory else ()) + (("from",) if _is_graph(analysis) else ())
            + (("block",) if _has_blocks(analysis) else ()))


def _is_graph(analysis: Analysis) -> bool:
    return any(layer.inputs != (layer.index - 1,) for layer in analysis.model.layers)


def _has_blocks(analysis: Analysis) -> bool:
    return any(layer.block for layer in analysis.model.layers)


def text_table(analysis: Analysis, results: list[AssertionResult] | None = None, memory: bool = False) -> str:
    results = _results(analysis, results)
    m = analysis.model
    head = f"model {m.name}   input {_shape(m.input_shape)}" + (f"   classes {m.classes}" if m.classes else "") \
        + f"   ({m.file})"
    rows = layer_cells(analysis, memory)
    columns = layer_columns(analysis, memory)
    widths = [max(len(c[i]) for c in rows + [list(columns)]) for i in range(len(columns))]
    left = {2, 3, len(columns) - 1} if _has_blocks(analysis) else {2, 3}  # text left, numbers right

    def line(cells):
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    out = [head, "", line(columns).rstrip(), line(["-" * w for w in widths])]
    out += [line(r).rstrip() for r in rows]
    out.append("")
    out += _summary(analysis, results, memory)
    return "\n".join(out)


def _summary(analysis: Analysis, results: list[AssertionResult], memory: bool = False) -> list[str]:
    final = analysis.final
    non_trainable = analysis.params - analysis.trainable_params
    lines = [f"total params: {analysis.params:,} (trainable {analysis.trainable_params:,}, "
             f"non-trainable {non_trainable:,})",
             f"total MACs:   {analysis.macs:,}",
             f"final receptive field: {_pair(final.rf)} (jump {_pair(final.jump)}) at layer {final.index}"]
    periodic = [row.index for row in analysis.rows if any(axis.period > 1 for axis in row.axes)]
    if periodic:  # after an upsampling, neighbours' fields do not step evenly
        lines.append(f"layers {_ranges(periodic)}: after an upsampling, neighbouring units' fields differ; "
                     "rf is the widest, jump the average step, start unit 0's centre")
    if memory:
        mem = analysis.memory
        lines += [f"peak activations: {mem.peak_elements * INT8:,} bytes int8, {mem.peak_elements * FLOAT32:,} "
                  f"float32, while layer {mem.peak.index} runs (* in `alive`)",
                  f"flash (estimated .tflite): {mem.flash_int8:,} bytes int8, {mem.flash_float32:,} float32"]
    for r in results:
        actual = ", ".join(r.actual) if isinstance(r.actual, list) else f"{r.actual:,}"
        lines.append(f"{'ok  ' if r.ok else 'FAIL'} {r.assertion.text}   (line {r.assertion.where.line}: {actual})")
    return lines + silenced_lines(analysis)


def _ranges(indices: list[int]) -> str:
    """`3-5, 9` for [3, 4, 5, 9]."""
    parts, first = [], indices[0]
    for prev, cur in zip(indices, indices[1:] + [None]):
        if cur != prev + 1:
            parts.append(f"{first}" if first == prev else f"{first}-{prev}")
            first = cur
    return ", ".join(parts)


def markdown_table(analysis: Analysis, results: list[AssertionResult] | None = None, memory: bool = False) -> str:
    results = _results(analysis, results)
    from ..safe_text import md_text  # names such as `__net__` would otherwise render as emphasis
    m = analysis.model
    out = [f"**{md_text(m.name)}** — input {_shape(m.input_shape)}", "",
           "| " + " | ".join(layer_columns(analysis, memory)) + " |",
           "|" + "|".join("---" if i in (2, 3) or name == "block" else "---:"
                          for i, name in enumerate(layer_columns(analysis, memory))) + "|"]
    names = layer_columns(analysis, memory)
    for cells in layer_cells(analysis, memory):
        # the layer as code; a block label is a user's name (`__b__` is not bold); the rest are numbers
        cells = [f"`{c}`" if i == 2 else md_text(c, at_line_start=False) if names[i] == "block"
                 else c.replace("|", "\\|") for i, c in enumerate(cells)]
        out.append("| " + " | ".join(cells) + " |")
    out.append("")
    out += [f"- {line}" for line in _summary(analysis, results, memory)]  # the grammar's words and numbers only
    return "\n".join(out)


FORMATS = {"table": text_table, "json": to_json, "csv": to_csv, "markdown": markdown_table}
