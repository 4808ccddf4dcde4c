"""Receptive field, jump, start, params and MACs of every layer; the spec's asserts.

Each op says how it changes rf, jump and start (`Op.geometry`; a window's formulas are in
`ops/geometry.py`). `start` is the centre of the first output unit's receptive field, in input
pixels (pixel centres at 0, 1, 2, ...). A global op (gap, flatten) is a window over the whole
feature map; element-wise layers carry their input's values over; on a graph, a merge's RF is
the union of its inputs' RF intervals. The warnings of a spec (W3xx) are warnings.py's.
"""
from __future__ import annotations

import functools
import operator
from fractions import Fraction
from dataclasses import dataclass, field

from ..display import num, pair
from ..errors import ConstraintError, Span, SpecSemanticError, SpecWarning, raise_collected
from ..ir import Assertion, Layer, Model
from ..ops import op_of, post_step
from ..ops.geometry import INPUT_AXIS, Axis
from .warnings import coverage_findings, merge_finding, said


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
    warnings: list[SpecWarning] = field(default_factory=list)   # what is said, a range of layers once
    silenced: list[SpecWarning] = field(default_factory=list)   # what the spec's `allow`s silence

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

    @functools.cached_property
    def memory(self):
        """Activation memory per layer and its peak, and the flash estimate (`analysis/memory.py`)."""
        from .memory import activation_memory
        return activation_memory(self.model)

    def metric(self, name: str):
        if name in ("ram", "flash"):  # bytes of an int8 model: the peak of live activations, the .tflite file
            return self.memory.peak_elements if name == "ram" else self.memory.flash_int8
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
    findings, errors = [], []
    merges: set[int] = set()  # the merges W302 checks
    for layer in model.layers:
        inputs = [geo[i] for i in layer.inputs]
        if len(layer.inputs) > 1 and _check_merge(layer, inputs, errors):
            merges.add(layer.index)
            finding = merge_finding(model, layer, inputs)
            if finding:
                findings.append(finding)
        geo[layer.index] = op_of(layer).geometry(layer, inputs)
        params, trainable = layer_params(layer)
        rows.append(stats(layer.index, geo[layer.index], params, trainable, _macs(layer)))
    raise_collected(errors)
    warnings, silenced = said(model, [(findings, merges), coverage_findings(model, geo)])
    return Analysis(model, rows, warnings, silenced)


def _check_merge(layer: Layer, inputs: list[tuple], errors: list) -> bool:
    """A merge's inputs must step through the image alike (E264); False if they do not."""
    if not layer.spatial:  # vectors (after gap/flatten): each unit sees its whole map, nothing to line up
        return False
    jumps = [tuple(a.jump for a in axes) for axes in inputs]
    names = [f"layer {i}" if i else "the input" for i in layer.inputs]
    if len(set(jumps)) > 1:
        described = ", ".join(f"{n} jump {_axes(j)}" for n, j in zip(names, jumps))
        errors.append(SpecSemanticError(
            f"{layer.text} merges paths that step through the image differently ({described})",
            Span(layer.where.file, layer.where.line, layer.where.column, layer.where.end_column),
            "downsample every path by the same strides (e.g. `same` padding with equal strides)", "E264"))
        return False
    return True


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
            results.append(AssertionResult(a, actual, holds(a, actual)))
    return results


def holds(assertion: Assertion, actual: float) -> bool:
    """Whether a numeric assertion (`assert flash < 92k`) holds for `actual`, measured however the caller likes:
    the analysis's estimate here, the written file's size in `archdsl export`."""
    return _COMPARE[assertion.comparison](actual, assertion.value)


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
