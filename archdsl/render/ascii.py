"""IR + analysis -> a drawing for the terminal, with no dependency.

One line a layer: a rail on the left that shows the flow (as `git log --graph` does),
the layer's index, the layer as written, its output shape, receptive field, jump and
parameters. The layers of one use of a block hang from a bracket headed by the block
label (a repeat's `2*conv#1` as `2 × conv (repeat 1 of conv)`), nested blocks inside their
parent's bracket; where one use ends and the next begins, one `├─` line does both:

    ●   1  conv 3x3 24 same bn relu6        32x32x24  rf 3   jump 1     744 params
    │      ┌─ dwpw(48,1)#1
    ●   2  │ dw 3x3 stride 1 same bn relu6  32x32x24  rf 5   jump 1     312 params
    ●   3  │ conv 1x1 48 same bn relu6      32x32x48  rf 5   jump 1   1,344 params
    │      ├─ dwpw(96,2)#2

A plain stack is one straight rail. On a graph, an output read again later forks to a
lane of its own (`├─╮`) and joins the layer that reads it (`├─╯`), so a layer with two
or more inputs shows as a merge:

    ●     1  conv 3x3 16 same bias bn relu      32x32x16  rf 3   jump 1      512 params
    │        ┌─ residual#1
    ├─╮      │
    ● │   2  │ conv 3x3 16 same bias bn relu    32x32x16  rf 5   jump 1    2,384 params
    ● │   3  │ conv 3x3 16 same bias bn         32x32x16  rf 7   jump 1    2,384 params
    ├─╯      │
    ●     4  │ residual add  (inputs 3, 1)      32x32x16  rf 7   jump 1
    │        └─
"""
from __future__ import annotations

from dataclasses import dataclass

from ..analysis import Analysis
from ..ir import Model
from ..display import pair as _pair, shape as _shape
from .draw import block_caption

MAX_WIDTH = 100

NODE, PIPE, BLANK = "● ", "│ ", "  "
PLAIN = str.maketrans({"●": "*", "│": "|", "├": "|", "┤": "|", "─": "-", "╮": "\\", "╯": "/", "┼": "+",
                       "┴": "+", "┌": "+", "└": "+", "·": ".", "…": "~", "×": "x"})


def to_plain_ascii(text: str) -> str:
    """The same drawing in 7-bit characters, for terminals that cannot show box drawing."""
    return text.translate(PLAIN).encode("ascii", "replace").decode("ascii")


@dataclass
class _Line:
    rail: str
    index: str = ""
    body: str = ""             # the indented text column: block brackets and the layer
    cells: tuple[str, ...] = ()  # output, rf, jump, params: only on layer lines


def draw(model: Model, analysis: Analysis) -> str:
    consumers: dict[int, list[int]] = {0: []}
    for layer in model.layers:
        consumers[layer.index] = []
        for i in dict.fromkeys(layer.inputs):
            consumers[i].append(layer.index)

    lines: list[_Line] = []
    lanes: list[int | None] = [0]  # lane -> the layer whose output runs down it (0: the input)
    open_blocks: list[str] = []
    lines.append(_Line(_rail([0], node=0), "", "input", (_shape(model.input_shape), "", "", "")))

    for layer, row in zip(model.layers, analysis.rows):
        path = layer.block.split("/") if layer.block else []
        lines += _block_lines(open_blocks, path, _rail(lanes))
        open_blocks = path

        inputs = list(dict.fromkeys(layer.inputs))
        for i in inputs:
            consumers[i].remove(layer.index)
        where = {i: lanes.index(i) for i in inputs}
        here = min(where.values())
        indent = PIPE * len(open_blocks)
        others = sorted(k for k in where.values() if k != here)
        if others:  # a merge: the other inputs' lanes join this one
            lines.append(_Line(_merge_rail(lanes, here, others, consumers), body=indent))
            for k in others:
                if not consumers[lanes[k]]:
                    lanes[k] = None
        if consumers[lanes[here]]:  # read again later: keep it running down a lane of its own
            k = next((k for k in range(here + 1, len(lanes)) if lanes[k] is None), len(lanes))
            lanes += [None] * (k + 1 - len(lanes))
            lines.append(_Line(_fork_rail(lanes, here, k), body=indent))
            lanes[k] = lanes[here]

        text = layer.text + (f"  (inputs {', '.join(map(str, layer.inputs))})" if len(layer.inputs) > 1 else "")
        if layer.spatial:
            cells = (_shape(layer.output_shape), f"rf {_pair(row.rf)}", f"jump {_pair(row.jump)}")
        else:  # past gap/flatten every unit sees the whole image
            cells = (_shape(layer.output_shape), "rf global", "")
        cells += (f"{row.params:,} params" if row.params else "",)
        lines.append(_Line(_rail(lanes, node=here), str(layer.index), indent + text, cells))
        lanes[here] = layer.index if consumers[layer.index] else None
        while lanes and lanes[-1] is None:
            lanes.pop()

    lines += _block_lines(open_blocks, [], _rail(lanes))
    return _layout(model, analysis, lines)


def _block_lines(current: list[str], new: list[str], rail: str) -> list[_Line]:
    """Bracket lines between two layers: close the blocks left, open the ones entered."""
    common = 0
    while common < min(len(current), len(new)) and current[common] == new[common]:
        common += 1
    out = []
    for depth in range(len(current) - 1, common, -1):
        out.append(_Line(rail, body=PIPE * depth + "└─"))
    if common < len(current) and common < len(new):  # one block ends where a sibling begins
        out.append(_Line(rail, body=PIPE * common + "├─ " + block_caption(new[common])))
        common += 1
    elif common < len(current):
        out.append(_Line(rail, body=PIPE * common + "└─"))
    for depth in range(common, len(new)):
        out.append(_Line(rail, body=PIPE * depth + "┌─ " + block_caption(new[depth])))
    return out


def _rail(lanes: list, node: int | None = None) -> str:
    return "".join(NODE if k == node else PIPE if p is not None else BLANK for k, p in enumerate(lanes))


def _merge_rail(lanes: list, here: int, others: list[int], consumers: dict) -> str:
    last = others[-1]
    out = []
    for k, p in enumerate(lanes):
        ends = p is not None and not consumers[p]
        if k == here:
            out.append("├─")
        elif here < k < last:
            out.append(("┴─" if ends else "┼─") if k in others else ("┼─" if p is not None else "──"))
        elif k == last:
            out.append("╯ " if ends else "┤ ")
        else:
            out.append(PIPE if p is not None else BLANK)
    return "".join(out)


def _fork_rail(lanes: list, here: int, new: int) -> str:
    out = []
    for k, p in enumerate(lanes):
        if k == here:
            out.append("├─")
        elif here < k < new:
            out.append("┼─" if p is not None else "──")
        elif k == new:
            out.append("╮ ")
        else:
            out.append(PIPE if p is not None else BLANK)
    return "".join(out)


def _layout(model: Model, analysis: Analysis, lines: list[_Line]) -> str:
    rail = max(len(line.rail) for line in lines)
    index = max(len(line.index) for line in lines)
    cells = [line.cells for line in lines if line.cells]
    widths = [max((len(c[i]) for c in cells if c[2] or i != 1), default=0) for i in range(4)]
    span = widths[1] + 2 + widths[2]  # "rf global" spans the rf and jump columns
    fixed = rail + 1 + index + 2 + sum(w + 2 for w in widths)
    body = min(max(len(line.body) for line in lines), MAX_WIDTH - fixed)

    head = f"model {model.name}   input {_shape(model.input_shape)}" \
        + (f"   classes {model.classes}" if model.classes else "") + f"   ({model.file})"
    out = [head, ""]
    for line in lines:
        text = _fit(line.body, body)
        parts = [line.rail.ljust(rail), line.index.rjust(index) + "  " + text.ljust(body)]
        if line.cells:
            shape, rf, jump, params = line.cells
            geometry = [rf.ljust(widths[1]), jump.ljust(widths[2])] if jump else [rf.ljust(span)]
            parts += [shape.ljust(widths[0]), *geometry, params.rjust(widths[3])]
        out.append((parts[0] + " " + parts[1] + "".join("  " + p for p in parts[2:])).rstrip())
    final = analysis.final
    out += ["", f"{analysis.params:,} params · {analysis.macs:,} MACs · final receptive field {_pair(final.rf)} "
                f"(jump {_pair(final.jump)}) at layer {final.index}"]
    return "\n".join(_fit(line, MAX_WIDTH) for line in out)


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[:max(0, width - 1)] + "…"
