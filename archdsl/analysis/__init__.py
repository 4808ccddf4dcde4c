"""Receptive field, jump, start, params and MACs of every layer; the spec's asserts.

Each op says how it changes rf, jump and start (`Op.geometry`; a window's formulas are in
`ops/geometry.py`). `start` is the centre of the first output unit's receptive field, in input
pixels (pixel centres at 0, 1, 2, ...). A global op (gap, flatten) is a window over the whole
feature map; element-wise layers carry their input's values over; on a graph, a merge's RF is
the union of its inputs' RF intervals.
"""
from __future__ import annotations

import operator
from fractions import Fraction
from dataclasses import dataclass, field

from ..display import num, pair
from ..errors import ConstraintError, Span, SpecSemanticError, raise_collected
from ..ir import Assertion, Layer, Model
from ..ops import op_of, post_step
from ..ops.geometry import INPUT_AXIS, Axis


@dataclass(frozen=True)
class LayerStats:
    index: int
    rf: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    params: int
    trainable_params: int
    macs: int
    axes: tuple[Axis, Axis] = (INPUT_AXIS, INPUT_AXIS)   # which input pixels each unit sees (rows, columns)

    def interval(self, i: int, axis: int) -> tuple[float, float]:
        """The input pixels unit i sees along an axis, unclipped: [first, last]. Where the fields step evenly
        (no upsampling before), that is start + i * jump +- (rf - 1) / 2, from the table's own numbers."""
        if self.axes[axis].period == 1:
            centre, half = self.start[axis] + i * self.jump[axis], (self.rf[axis] - 1) / 2
            return centre - half, centre + half
        return self.axes[axis].interval(i)


def stats(index: int, axes, params: int, trainable: int, macs: int) -> LayerStats:
    return LayerStats(index, tuple(a.rf for a in axes), tuple(a.jump for a in axes), tuple(a.start for a in axes),
                      params, trainable, macs, tuple(axes))


@dataclass
class Analysis:
    model: Model
    rows: list[LayerStats]
    warnings: list[str] = field(default_factory=list)

    @property
    def params(self) -> int:
        return sum(r.params for r in self.rows)

    @property
    def trainable_params(self) -> int:
        return sum(r.trainable_params for r in self.rows)

    @property
    def macs(self) -> int:
        return sum(r.macs for r in self.rows)

    @property
    def final(self) -> LayerStats:
        """The deepest feature map's stats: what the head (gap/flatten/dense) sees."""
        spatial = [(r, layer) for r, layer in zip(self.rows, self.model.layers)
                   if layer.spatial and not op_of(layer).is_global]
        pooled = _after_whole_map_pools(self.model)
        maps = [r for r, layer in spatial if layer.index not in pooled] or [r for r, _ in spatial]
        return maps[-1] if maps else stats(0, (INPUT_AXIS, INPUT_AXIS), 0, 0, 0)

    def metric(self, name: str):
        final = self.final
        return {
            "params": self.params, "trainable_params": self.trainable_params,
            "non_trainable_params": self.params - self.trainable_params, "macs": self.macs,
            "rf": min(final.rf), "rf_h": final.rf[0], "rf_w": final.rf[1], "jump": float(max(final.jump)) if isinstance(max(final.jump), Fraction) else max(final.jump),
            "layers": len(self.model.layers), "output": self.model.output.output_shape[-1],
            "ops": sorted({op_of(layer).assert_name(layer) for layer in self.model.layers}),
        }[name]


def _after_whole_map_pools(model: Model) -> set[int]:
    """Pools whose one window covers the whole map (`avgpool 8` on 8x8), and the layers after them: a global op
    in disguise and its head. A conv with a 1x1 output is still a feature map."""
    pooled: set[int] = set()
    for layer in model.layers:
        if any(i in pooled for i in layer.inputs) or op_of(layer).covers_whole_map(layer):
            pooled.add(layer.index)
    return pooled


def analyze(model: Model) -> Analysis:
    geo: dict[int, tuple] = {0: (INPUT_AXIS, INPUT_AXIS)}
    rows = []
    merge_warnings, errors = [], []
    for layer in model.layers:
        inputs = [geo[i] for i in layer.inputs]
        if len(layer.inputs) > 1:
            _check_merge(model, layer, inputs, merge_warnings, errors)
        geo[layer.index] = op_of(layer).geometry(layer, inputs)
        params, trainable = layer_params(layer)
        rows.append(stats(layer.index, geo[layer.index], params, trainable, _macs(layer)))
    raise_collected(errors)
    result = Analysis(model, rows)
    result.warnings = _warnings(model, result) + merge_warnings
    return result


def _check_merge(model: Model, layer: Layer, inputs: list[tuple], warnings: list[str], errors: list) -> None:
    """A merge's inputs must step through the image alike; say where their centres differ."""
    if not layer.spatial:  # vectors (after gap/flatten): each unit sees its whole map, nothing to line up
        return
    jumps = [tuple(a.jump for a in axes) for axes in inputs]
    names = [f"layer {i}" if i else "the input" for i in layer.inputs]
    if len(set(jumps)) > 1:
        described = ", ".join(f"{n} jump {_axes(j)}" for n, j in zip(names, jumps))
        errors.append(SpecSemanticError(
            f"{layer.text} merges paths that step through the image differently ({described})",
            Span(layer.where.file, layer.where.line, layer.where.column, layer.where.end_column),
            "downsample every path by the same strides (e.g. `same` padding with equal strides)", "E264"))
        return
    starts = [tuple(a.start for a in axes) for axes in inputs]
    if len(set(starts)) > 1:
        described = ", ".join(f"{n} at {_axes(s)}" for n, s in zip(names, starts))
        causes = [c for i in sorted(_own_layers(model, layer)) if (c := _offset_cause(model.layer(i)))]
        warnings.append(f"{layer.where.file}:{layer.where.line}: layer {layer.index} ({layer.text}): the merged "
                        f"paths' receptive fields are centred on different pixels ({described}): "
                        + ("; ".join(causes) or "their windows are centred differently"))


def _own_layers(model: Model, merge: Layer) -> set[int]:
    """The layers on some but not all of a merge's paths, back to where every path starts."""
    reach: dict[int, set[int]] = {}  # layer -> the paths that reach it
    for path, i in enumerate(merge.inputs):
        reach.setdefault(i, set()).add(path)
    own: set[int] = set()
    while reach:
        i = max(reach)  # inputs have lower indices: every path through i is known by now
        paths = reach.pop(i)
        if len(paths) == len(merge.inputs) and not reach:
            break
        if len(paths) < len(merge.inputs):
            own.add(i)
        for j in model.layer(i).inputs if i else ():
            reach.setdefault(j, set()).update(paths)
    return own


def _offset_cause(layer: Layer) -> str | None:
    """Why a layer's first window is not centred on its input's first unit, in the user's terms; None if it is."""
    kind = op_of(layer)
    for axis in (0, 1):
        window = kind.window(layer, axis)
        if window is None:
            return None
        n, k, s, d, before, after = window
        k_eff = d * (k - 1) + 1
        if before == (k_eff - 1) / 2:
            continue
        what = f"layer {layer.index} ({layer.text})"
        if k_eff % 2 == 0:
            return f"{what} has an even kernel, whose centre falls between two pixels"
        if layer.padding == "same":
            return f"{what} has stride {s} on size {n}, which TF's SAME padding pads {before} before and {after} after"
        if layer.padding == "explicit":
            return f"{what} pads {before} before and {after} after a {k_eff}-wide window, which centres it " \
                   f"{(k_eff - 1) / 2 - before:g} units in from its input's edge"
        return f"{what} is `valid`: its first window is centred {(k_eff - 1) // 2} units in from its input's edge"
    return None


def _axes(values) -> str:
    return pair([num(v) for v in values])


def layer_params(layer: Layer) -> tuple[int, int]:
    """(total, trainable) of the layer's op and its post-op steps (batch norm's four vectors a channel)."""
    total, trainable = op_of(layer).params(layer)
    for post in layer.post:
        extra, extra_trainable = post_step(post).post_params(post, layer.output_shape[-1])
        total, trainable = total + extra, trainable + extra_trainable
    return total, trainable


def _macs(layer: Layer) -> int:
    """Multiply-accumulates of conv and dense layers (pools, BN and activations count 0)."""
    return op_of(layer).macs(layer)


def _warnings(model: Model, analysis: Analysis) -> list[str]:
    h, w, _ = model.input_shape
    warnings = []
    by_index = {0: ((1, 1),)}
    for layer, row in zip(model.layers, analysis.rows):
        by_index[layer.index] = (row.rf,)
        if not op_of(layer).windowed or layer.kernel == (1, 1):  # a 1x1 window never adds context
            continue
        incoming = by_index[layer.inputs[0]][0]
        if incoming[0] >= h and incoming[1] >= w:
            warnings.append(f"{layer.where.file}:{layer.where.line}: layer {layer.index} ({layer.text}): the "
                            f"receptive field already covers the {h}x{w} input before it "
                            f"({incoming[0]}x{incoming[1]}); it adds depth but no context")
    return warnings


_COMPARE = {"<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
            "==": operator.eq, "!=": operator.ne}


@dataclass(frozen=True)
class AssertionResult:
    assertion: Assertion
    actual: object
    ok: bool


def check_assertions(analysis: Analysis) -> list[AssertionResult]:
    results = []
    for a in analysis.model.assertions:
        actual = analysis.metric(a.metric)
        if a.comparison in ("in", "not in"):
            outside = [op for op in actual if (op in a.value) != (a.comparison == "in")]
            results.append(AssertionResult(a, outside if outside else actual, not outside))
        else:
            results.append(AssertionResult(a, actual, _COMPARE[a.comparison](actual, a.value)))
    return results


def constraint_errors(results: list[AssertionResult], source: str | None) -> list[ConstraintError]:
    errors = []
    for r in results:
        if r.ok:
            continue
        a = r.assertion
        span = Span(a.where.file, a.where.line, a.where.column, a.where.column + len("assert"))
        if a.comparison in ("in", "not in"):
            verb = "uses" if a.comparison == "in" else "uses forbidden"
            message = f"{a.text} does not hold: the model {verb} {', '.join(r.actual)}"
            hint = "replace those layers, or widen the list"
        else:
            message = f"{a.text} does not hold: {a.metric} is {r.actual:,}"
            hint = "change the model or the limit"
        errors.append(ConstraintError(message, span, hint, "E301", source))
    return errors
