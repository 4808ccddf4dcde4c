"""Resolving `residual` and `parallel` statements: several paths from one tip, joined by a merge layer.

    residual { body } [shortcut { layers }]   ->  add(body(x), shortcut(x) or x)
    parallel concat { branch {..} branch {..} } -> concat(branch1(x), branch2(x), ...)

Each path is expanded from the same entry tip by resolve.py's machinery (the `state` it passes); the merge
layer (`add` or `concat`) lists the paths' last layers as its inputs, which makes
the IR a graph.
"""
from __future__ import annotations

from ..display import pair, shape as shape_text
from ..errors import SpecSemanticError, did_you_mean
from ..ir import Layer, Where
from ..ops import OPS, relative_geometry
from ..ops.geometry import output_size
from .spec import ResidualStmt

MERGES = tuple(name for name, op in OPS.items() if op.joins_paths)  # `residual add`, `parallel concat`


def join_label(outer: str | None, inner: str) -> str:
    """A block label inside another: `stage(64)#1/residual#2`."""
    return f"{outer}/{inner}" if outer else inner


def expand_merge_block(state, stmt, env: dict, block: str | None, depth: int) -> None:
    """Expand each path from the current tip (`state`: resolve's expansion, whose methods expand a statement
    and check the layer budget), then join them with the merge layer."""
    residual = isinstance(stmt, ResidualStmt)
    kind = "residual" if residual else "parallel"
    merge = stmt.merge.text.lower() if stmt.merge else "add"
    if merge not in MERGES:
        state.errors.append(SpecSemanticError(f"unknown merge '{stmt.merge.text}'", stmt.merge.span,
                                              did_you_mean(merge, MERGES) or "merge with add or concat", "E260"))
        state.shape = None
        return
    state.uses[kind] = n = state.uses.get(kind, 0) + 1
    label = join_label(block, f"{kind}#{n}")
    if residual:
        if not stmt.body.statements:
            state.errors.append(SpecSemanticError("a residual block needs at least one layer in its body",
                                                  stmt.span, "put layers between the braces", "E261"))
            state.shape = None
            return
        paths = [("the body", stmt.body, label), ("the shortcut", stmt.shortcut, f"{label}/shortcut")]
    else:
        if len(stmt.branches) < 2:
            state.errors.append(SpecSemanticError("a parallel block needs at least two branches", stmt.span,
                                                  "add a branch: `branch {` ending its line, its layers on the "
                                                  "lines after it, and `}` on a line of its own (a branch with no "
                                                  "layers is the identity)",
                                                  "E262"))
            state.shape = None
            return
        paths = [(f"branch {i + 1}", b.body, f"{label}/branch{i + 1}") for i, b in enumerate(stmt.branches)]
    entry = (state.last, state.shape)
    outputs = []
    for name, body, path_label in paths:
        state.last, state.shape = entry
        for inner in (body.statements if body else []):
            state.expand_statement(inner, env, path_label, depth + 1)
        outputs.append((name, state.last, state.shape))
    if not state.room_for_one_more(stmt, block):
        return
    if any(shape is None for _, _, shape in outputs):
        state.shape = None
        return
    out = _merge_shape(merge, outputs, stmt, residual, state.errors, state.layers, entry)
    if out is None:
        state.shape = None
        return
    index = len(state.layers) + 1
    state.layers.append(Layer(index=index, name=f"l{index:02d}_{merge}", op=merge,
                              inputs=tuple(i for _, i, _ in outputs), text=f"{kind} {merge}",
                              where=Where(file=stmt.span.file, line=stmt.span.line, column=stmt.span.column,
                                          end_column=stmt.span.end_column),
                              block=label, input_shape=outputs[0][2], output_shape=out))
    state.shape, state.last = out, index


def _merge_shape(merge: str, outputs, stmt, residual: bool, errors: list, layers: list, entry: tuple):
    op = OPS[merge]
    first_name, _, first = outputs[0]
    for name, _, shape in outputs[1:]:
        needed = op.mismatch(first, shape)
        if needed is None:
            continue
        if residual and op.keeps_shape:
            hint = _shortcut_hint(first, outputs[0][1], layers, entry)
        else:
            hint = op.mismatch_hint
        errors.append(SpecSemanticError(f"{merge} needs {needed}, but {first_name} gives {shape_text(first)} and "
                                        f"{name} gives {shape_text(shape)}", stmt.span, hint, "E263"))
        return None
    out = op.merged_shape([shape for _, _, shape in outputs])
    if isinstance(out, str):  # too many channels
        errors.append(SpecSemanticError(out, stmt.span, "narrow the branches, or merge them with add", "E214"))
        return None
    return out


def _shortcut_hint(target, body: int, layers, entry) -> str:
    """A projection shortcut from the block's input to the body's output, if one conv lands on its size and jump."""
    conv = _projection(target, body, layers, entry)
    if conv is None:
        return "make the body end with the shape it starts with"
    return (f"give the shortcut layers that produce {shape_text(target)}: `}} shortcut {{`, then `{conv}`, then `}}`, "
            "each on a line of its own")


def _projection(target, body: int, layers, entry) -> str | None:
    """`conv KxK F sS same|valid` from `entry` (index, shape) to the size and jump of layer `body`, or None.
    The stride is the body's jump (any other is E264). The kernel lands on the body's size; of those, one centred
    where the body's output is (no misalignment warning), else the smallest: a 1x1 when it fits."""
    start, shape = entry
    if len(target) != 3 or shape is None or len(shape) != 3:
        return None
    geo = relative_geometry(layers, start)
    if body == start or body not in geo:
        return None
    jump, centre = tuple(a.jump for a in geo[body]), tuple(a.start for a in geo[body])
    if not all(isinstance(j, int) for j in jump):  # an upsampled path: no single conv lands on it
        return None
    kernel = []
    for n, m, s, c in zip(shape[:2], target[:2], jump, centre):
        # `valid` gives (n - k) // s + 1 outputs: m of them for k in [lo, hi]; a window k is centred at (k - 1) / 2
        lo, hi = max(1, n - m * s + 1), min(n, n - (m - 1) * s)
        if lo > hi:
            return None
        kernel.append(int(2 * c + 1) if (2 * c).is_integer() and lo <= 2 * c + 1 <= hi else lo)
    padding = "same" if kernel == [1, 1] else "valid"  # a 1x1 window pads nothing either way
    # the shortcut as the user would write it, through the same analysis: its size and jump must be the body's
    out = tuple(output_size(n, k, s, 1, padding) for n, k, s in zip(shape[:2], kernel, jump))
    shortcut = Layer(index=len(layers) + 1, name="shortcut", op="conv", inputs=(start,), text="shortcut",
                     where=layers[body - 1].where, kernel=tuple(kernel), stride=jump, dilation=(1, 1),
                     padding=padding, filters=target[-1], input_shape=shape, output_shape=out + target[-1:])
    if out != target[:2] or tuple(a.jump for a in relative_geometry([shortcut], start)[shortcut.index]) != jump:
        return None
    stride = "" if jump == (1, 1) else f" s{pair(jump)}"
    return f"conv {kernel[0]}x{kernel[1]} {target[-1]}{stride} {padding}"
