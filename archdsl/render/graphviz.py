"""IR + analysis -> a graphviz diagram (the only module that imports `graphviz`).

One node a layer, reading as the spec does: the layer as written, its output shape,
receptive field and jump, and its parameters. Nodes are coloured by the kind of op;
the input and the head (the model's output) are marked; the layers of one use of a
repeat or named block sit in a `cluster_*` subgraph labelled with the block (`draw.block_caption`), nested
blocks in nested clusters. Edges are the layers' `inputs`, so branches and merges
draw as they are: the longest path from input to output is kept straight (the trunk),
and the first layers of parallel branches start side by side, in written order.

Every piece of user text (layer text, block labels) goes into graphviz HTML-like
labels through `escape`, never into a plain label.
"""
from __future__ import annotations

import shutil

import graphviz

from ..analysis import Analysis, LayerStats
from ..errors import RunError, UsageError
from ..ir import Layer, Model
from ..ops import op_of
from ..display import pair as _pair, shape as _shape
from .draw import block_caption

FONT = "Helvetica"
CODE_FONT = "Courier-Bold"  # the layer as written: what the user typed

# kind of op -> (fill, border); a light fill keeps the dark text readable
KIND_COLOURS = {
    "conv": ("#dbeafe", "#2563eb"),
    "pool": ("#dcfce7", "#16a34a"),
    "head": ("#fef3c7", "#d97706"),
    "dense": ("#ede9fe", "#7c3aed"),
    "norm": ("#f3f4f6", "#6b7280"),
    "merge": ("#fee2e2", "#dc2626"),
    "input": ("#e5e7eb", "#111827"),
}
CLUSTER_FILLS = ("#f8fafc", "#eef2f7", "#e2e8f0")  # deeper blocks, darker
MUTED = "#4b5563"
INDEX_WIDTH = 24  # points: the index column, room for "123" and a gap


class DotNotFound(UsageError):
    """The graphviz `dot` program is not installed."""
    default_code = "E651"


def escape(text: str) -> str:
    """Text safe inside a graphviz HTML-like label (and inside XML, as SVG output is)."""
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&#39;"))


def kind(layer: Layer) -> str:
    """The colour group of a layer's op (its registry class says which)."""
    return op_of(layer).draw_kind


def stats_line(layer: Layer, row: LayerStats) -> str:
    """`32x32x16 · rf 3 · jump 1`; past a global op every unit sees the whole image."""
    if not layer.spatial:
        return f"{_shape(layer.output_shape)} · rf global"
    return f"{_shape(layer.output_shape)} · rf {_pair(row.rf)} · jump {_pair(row.jump)}"


def _label(rows: list[tuple[str, str]], index: str = "", width: int = 0) -> str:
    """An HTML-like label: the layer's index in a narrow column, then (style, escaped text) rows.

    `width` (points) is the text column's least width: equal widths make a stack a straight column.
    """
    cells = []
    for n, (style, text) in enumerate(rows):
        left = ""
        if n == 0 and index:
            left = (f'<TD ROWSPAN="{len(rows)}" ALIGN="RIGHT" VALIGN="TOP" WIDTH="{INDEX_WIDTH}">'
                    f'<FONT POINT-SIZE="11" COLOR="{MUTED}">{index}&#160;</FONT></TD>')
        font = {"code": f'FACE="{CODE_FONT}" POINT-SIZE="12"',
                "stats": f'POINT-SIZE="10" COLOR="{MUTED}"',
                "tag": 'POINT-SIZE="10" COLOR="#111827"'}[style]
        if style == "tag":
            text = f"<B>{text}</B>"
        size = f' WIDTH="{width}"' if width and n == 0 else ""
        cells.append(f'<TR>{left}<TD ALIGN="LEFT"{size}><FONT {font}>{text}</FONT></TD></TR>')
    return '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1">' + "".join(cells) + "</TABLE>>"


def node_id(index: int) -> str:
    return f"n{index}"


def to_digraph(model: Model, analysis: Analysis, rankdir: str = "TB") -> graphviz.Digraph:
    g = graphviz.Digraph(name=model.name)
    final = analysis.final
    summary = f"{analysis.params:,} params" + (f" · {model.classes} classes" if model.classes else "") \
        + f" · final rf {_pair(final.rf)} (jump {_pair(final.jump)})"
    g.attr(rankdir=rankdir, newrank="true", fontname=FONT, labelloc="t", labeljust="l", nodesep="0.25", ranksep="0.3",
           bgcolor="white", pad="0.2",
           label=f'<<TABLE BORDER="0" CELLSPACING="0" CELLPADDING="3">'
                 f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="16"><B>{escape(model.name)}</B></FONT></TD></TR>'
                 f'<TR><TD ALIGN="LEFT"><FONT POINT-SIZE="11" COLOR="{MUTED}">{escape(summary)}</FONT></TD></TR>'
                 f'</TABLE>>')
    g.attr("node", shape="box", style="rounded,filled", fontname=FONT, margin="0.12,0.06", penwidth="1.2")
    g.attr("edge", color="#6b7280", arrowsize="0.7", penwidth="1.2")

    fill, border = KIND_COLOURS["input"]
    g.node(node_id(0), _label([("code", "input"), ("stats", escape(_shape(model.input_shape)))]),
           fillcolor=fill, color=border, penwidth="2", tooltip="the model input", group="trunk")

    # in a top-to-bottom stack equal widths read as one straight column; side by side they only waste room
    width = _width(model) if rankdir == "TB" else 0
    trunk = _trunk(model)
    _emit(g, _block_tree(model), model, analysis, (), width, {i for edge in trunk for i in edge})
    for heads in _branch_heads(model):  # the first layers of parallel branches start side by side
        with g.subgraph() as same:
            same.attr(rank="same")
            for index in heads:
                same.node(node_id(index))
    for layer in model.layers:
        for i in layer.inputs:
            if (i, layer.index) in trunk:  # keep the longest path a straight line
                g.edge(node_id(i), node_id(layer.index), weight="10")
            else:
                g.edge(node_id(i), node_id(layer.index))
    return g


def _branch_heads(model: Model) -> list[list[int]]:
    """For each output read by several layers, those of its readers that read nothing else."""
    readers: dict[int, list[int]] = {}
    for layer in model.layers:
        if len(layer.inputs) == 1:
            readers.setdefault(layer.inputs[0], []).append(layer.index)
    return [heads for heads in readers.values() if len(heads) > 1]


def _trunk(model: Model) -> set[tuple[int, int]]:
    """The edges of the longest path from the input to the output: the spine the branches hang from."""
    depth = {0: (0, -1)}
    for layer in model.layers:  # layers come in topological order
        depth[layer.index] = max((depth[i][0] + 1, i) for i in layer.inputs)
    trunk, node = set(), model.output.index
    while node > 0:
        trunk.add((depth[node][1], node))
        node = depth[node][1]
    return trunk


def _block_tree(model: Model) -> dict:
    """Nested {"layers": [...], "children": {segment: subtree}}; order of first appearance kept."""
    root: dict = {"layers": [], "children": {}}
    for layer in model.layers:
        node = root
        for segment in (layer.block.split("/") if layer.block else []):
            node = node["children"].setdefault(segment, {"layers": [], "children": {}})
        node["layers"].append(layer)
    return root


def _emit(g: graphviz.Digraph, tree: dict, model: Model, analysis: Analysis, path: tuple[int, ...],
          width: int, trunk: set[int]) -> None:
    """The nodes of `tree`'s own layers, then one cluster a block use, nested as the blocks are."""
    for layer in tree["layers"]:
        _layer_node(g, layer, analysis.rows[layer.index - 1], head=layer.index == model.output.index, width=width,
                    trunk=layer.index in trunk)
    # dot (newrank) lays sibling clusters out right to left in the order they are written: write them
    # last first, so parallel branches read branch1, branch2, ... from the left
    for n, (segment, sub) in reversed(list(enumerate(tree["children"].items(), start=1))):
        sub_path = path + (n,)
        name = "cluster_" + "_".join(str(p) for p in sub_path)
        with g.subgraph(name=name) as c:
            c.attr(label=f'<<FONT POINT-SIZE="11" COLOR="#334155"><B>{escape(block_caption(segment))}</B></FONT>>',
                   labeljust="l", style="rounded,filled", color="#94a3b8", penwidth="1",
                   fillcolor=CLUSTER_FILLS[min(len(sub_path), len(CLUSTER_FILLS)) - 1], margin="8")
            _emit(c, sub, model, analysis, sub_path, width, trunk)


def _layer_node(g: graphviz.Digraph, layer: Layer, row: LayerStats, head: bool, width: int, trunk: bool) -> None:
    fill, border = KIND_COLOURS[kind(layer)]
    rows = [("code", escape(layer.text)), ("stats", escape(stats_line(layer, row)))]
    if row.params:
        rows.append(("stats", escape(f"{row.params:,} params")))
    attrs = {"fillcolor": fill, "color": border,
             "tooltip": f"layer {layer.index} ({layer.name}), line {layer.where.line}"}
    if trunk:
        attrs["group"] = "trunk"
    if head:
        rows.append(("tag", "model output"))
        attrs.update(penwidth="2.5", color="#111827")
    g.node(node_id(layer.index), _label(rows, index=str(layer.index), width=width), **attrs)


def _width(model: Model) -> int:
    """The text column's width in points: the longest layer text in 12pt monospace (0.6 em a character)."""
    return round(7.6 * max(len(layer.text) for layer in model.layers)) + 6


def render(graph: graphviz.Digraph, fmt: str) -> bytes:
    """The diagram as `fmt` bytes; `dot` source needs no program."""
    if fmt == "dot":
        return graph.source.encode("utf-8")
    if shutil.which("dot") is None:
        raise DotNotFound("the graphviz program `dot` is not installed", hint=INSTALL_HINT)
    g = graph
    if fmt == "png":  # a crisp picture on high-density screens; SVG and PDF are vector
        g = graph.copy()
        g.attr(dpi="144")
    try:
        return g.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise DotNotFound("the graphviz program `dot` is not installed", hint=INSTALL_HINT) from None
    except graphviz.CalledProcessError as exc:
        stderr = exc.stderr.decode("utf-8", "replace").strip() if isinstance(exc.stderr, bytes) else exc.stderr
        raise RunError(f"graphviz `dot` failed to draw {fmt}: {stderr or exc}",
                       hint="draw the .dot source (--format dot) and report the problem", code="E652") from None


def render_svg(model: Model, analysis: Analysis, rankdir: str = "TB") -> str:
    """The diagram as SVG text, e.g. to inline in an HTML report."""
    return render(to_digraph(model, analysis, rankdir), "svg").decode("utf-8")


INSTALL_HINT = ("install graphviz: `apt-get install graphviz` (Debian/Ubuntu), `brew install graphviz` (macOS), "
                "or see https://graphviz.org/download/")
