"""Receptive field, jump, start, params and MACs of every layer; the spec's asserts.

Per axis, for a window op with kernel k, dilation d, stride s, and TF padding:
    k_eff = d*(k-1) + 1
    rf    = rf_in + (k_eff - 1) * jump_in
    jump  = jump_in * s
    start = start_in + ((k_eff - 1)/2 - pad_before) * jump_in
`start` is the centre of the first output unit's receptive field, in input pixels
(pixel centres at 0, 1, 2, ...). A global op (gap, flatten) is a window over the
whole feature map. Layers without a window carry their input's values over.
On a graph, a merge's RF is the union of its inputs' RF intervals.
"""
from __future__ import annotations

import operator
from dataclasses import dataclass, field

from . import geometry
from .display import num, pair
from .errors import ConstraintError, Span, SpecSemanticError, raise_collected
from .ir import GLOBAL_OPS, MERGE_OPS, POOL_OPS, WINDOW_OPS, Assertion, Layer, Model


@dataclass(frozen=True)
class LayerStats:
    index: int
    rf: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    params: int
    trainable_params: int
    macs: int


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
                   if layer.spatial and layer.op not in GLOBAL_OPS]
        pooled = _after_whole_map_pools(self.model)
        maps = [r for r, layer in spatial if layer.index not in pooled] or [r for r, _ in spatial]
        return maps[-1] if maps else LayerStats(0, (1, 1), (1, 1), (0.0, 0.0), 0, 0, 0)

    def metric(self, name: str):
        final = self.final
        return {
            "params": self.params, "trainable_params": self.trainable_params,
            "non_trainable_params": self.params - self.trainable_params, "macs": self.macs,
            "rf": min(final.rf), "rf_h": final.rf[0], "rf_w": final.rf[1], "jump": max(final.jump),
            "layers": len(self.model.layers), "output": self.model.output.output_shape[-1],
            "ops": sorted({_op_name(layer) for layer in self.model.layers}),
        }[name]


def _after_whole_map_pools(model: Model) -> set[int]:
    """Pools whose one window covers the whole map (`avgpool 8` on 8x8), and the layers after them: a global op
    in disguise and its head. A conv with a 1x1 output is still a feature map."""
    pooled: set[int] = set()
    for layer in model.layers:
        if any(i in pooled for i in layer.inputs) or _whole_map_pool(layer):
            pooled.add(layer.index)
    return pooled


def _whole_map_pool(layer: Layer) -> bool:
    return (layer.op in POOL_OPS and layer.output_shape[:2] == (1, 1)
            and all(geometry.effective_kernel(k, d) >= n
                    for k, d, n in zip(layer.kernel, layer.dilation or (1, 1), layer.input_shape[:2])))


def analyze(model: Model) -> Analysis:
    geo: dict[int, tuple] = {0: ((1, 1), (1, 1), (0.0, 0.0))}
    rows = []
    merge_warnings, errors = [], []
    for layer in model.layers:
        inputs = [geo[i] for i in layer.inputs]
        if layer.op in MERGE_OPS:
            _check_merge(model, layer, inputs, merge_warnings, errors)
        geo[layer.index] = _geometry(layer, inputs)
        params, trainable = _params(layer)
        rf, jump, start = geo[layer.index]
        rows.append(LayerStats(layer.index, rf, jump, start, params, trainable, _macs(layer)))
    raise_collected(errors)
    result = Analysis(model, rows)
    result.warnings = _warnings(model, result) + merge_warnings
    return result


def relative_geometry(layers, origin: int) -> dict[int, tuple]:
    """(rf, jump, start) of the layers that read from layer `origin`, computed as `analyze` does but in units of
    origin's map (there rf 1, jump 1, start 0): what a path from origin, such as a shortcut, must match."""
    geo = {origin: ((1, 1), (1, 1), (0.0, 0.0))}
    for layer in layers:
        if layer.index > origin and layer.inputs and all(i in geo for i in layer.inputs):
            geo[layer.index] = _geometry(layer, [geo[i] for i in layer.inputs])
    return geo


def _check_merge(model: Model, layer: Layer, inputs: list[tuple], warnings: list[str], errors: list) -> None:
    """A merge's inputs must step through the image alike; say where their centres differ."""
    if not layer.spatial:  # vectors (after gap/flatten): each unit sees its whole map, nothing to line up
        return
    jumps = {j for _, j, _ in inputs}
    names = [f"layer {i}" if i else "the input" for i in layer.inputs]
    if len(jumps) > 1:
        described = ", ".join(f"{n} jump {_axes(j)}" for n, (_, j, _) in zip(names, inputs))
        errors.append(SpecSemanticError(
            f"{layer.text} merges paths that step through the image differently ({described})",
            Span(layer.where.file, layer.where.line, layer.where.column, layer.where.end_column),
            "downsample every path by the same strides (e.g. `same` padding with equal strides)", "E264"))
        return
    starts = {s for _, _, s in inputs}
    if len(starts) > 1:
        described = ", ".join(f"{n} at {_axes(s)}" for n, (_, _, s) in zip(names, inputs))
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
    if layer.op not in WINDOW_OPS:
        return None
    for n, k, s, d in zip(layer.input_shape[:2], layer.kernel, layer.stride, layer.dilation or (1, 1)):
        k_eff = geometry.effective_kernel(k, d)
        before = geometry.pad_before(n, k, s, d, layer.padding)
        if before == (k_eff - 1) / 2:
            continue
        what = f"layer {layer.index} ({layer.text})"
        if k_eff % 2 == 0:
            return f"{what} has an even kernel, whose centre falls between two pixels"
        if layer.padding == "same":
            after = max((geometry.output_size(n, k, s, d, "same") - 1) * s + k_eff - n, 0) - before
            return f"{what} has stride {s} on size {n}, which TF's SAME padding pads {before} before and {after} after"
        return f"{what} is `valid`: its first window is centred {(k_eff - 1) // 2} units in from its input's edge"
    return None


def _axes(values) -> str:
    return pair([num(v) for v in values])


def _geometry(layer: Layer, inputs: list[tuple]):
    if layer.op in MERGE_OPS:
        return _union(inputs)
    (rf, jump, start), = inputs
    in_shape = layer.input_shape
    if layer.op in WINDOW_OPS:
        axes = [_window_axis(in_shape[a], layer.kernel[a], layer.stride[a], layer.dilation[a], layer.padding,
                             rf[a], jump[a], start[a]) for a in (0, 1)]
    elif layer.op in GLOBAL_OPS and len(in_shape) == 3:
        axes = [_window_axis(in_shape[a], in_shape[a], 1, 1, "valid", rf[a], jump[a], start[a]) for a in (0, 1)]
    else:
        return rf, jump, start
    return tuple(tuple(axis[i] for axis in axes) for i in range(3))


def _window_axis(n, k, s, d, padding, rf, jump, start):
    k_eff = geometry.effective_kernel(k, d)
    pad = geometry.pad_before(n, k, s, d, padding)
    return rf + (k_eff - 1) * jump, jump * s, start + ((k_eff - 1) / 2 - pad) * jump


def _union(inputs: list[tuple]):
    """RF of a merge: the union of the inputs' intervals of the first output unit."""
    rf, jump, start = [], [], []
    for a in (0, 1):
        lo = min(s[a] - (r[a] - 1) / 2 for r, _, s in inputs)
        hi = max(s[a] + (r[a] - 1) / 2 for r, _, s in inputs)
        rf.append(int(hi - lo + 1))
        jump.append(max(j[a] for _, j, _ in inputs))
        start.append((lo + hi) / 2)
    return tuple(rf), tuple(jump), tuple(start)


def _params(layer: Layer) -> tuple[int, int]:
    cin = layer.input_shape[-1]
    f = layer.filters or 0
    kh, kw = layer.kernel or (1, 1)
    bias = layer.use_bias
    dm = layer.depth_multiplier or 1
    weights = {
        "conv": kh * kw * cin * f + (f if bias else 0),
        "sep": kh * kw * cin * dm + cin * dm * f + (f if bias else 0),
        "dw": kh * kw * cin * dm + (cin * dm if bias else 0),
        "dense": cin * f + (f if bias else 0),
    }.get(layer.op, 0)
    total, trainable = weights, 0 if layer.whiten else weights  # a whitened kernel is set once, frozen
    channels = layer.output_shape[-1]
    bn_count = sum(1 for p in layer.post if p.kind == "bn") + (layer.op == "bn")
    # BatchNormalization: gamma and beta train; moving mean and variance do not
    total += 4 * channels * bn_count
    trainable += 2 * channels * bn_count
    return total, trainable


def _macs(layer: Layer) -> int:
    """Multiply-accumulates of conv and dense layers (pools, BN and activations count 0)."""
    cin = layer.input_shape[-1]
    f = layer.filters or 0
    kh, kw = layer.kernel or (1, 1)
    dm = layer.depth_multiplier or 1
    positions = layer.output_shape[0] * layer.output_shape[1] if layer.spatial else 1
    return positions * {
        "conv": kh * kw * cin * f,
        "sep": kh * kw * cin * dm + cin * dm * f,
        "dw": kh * kw * cin * dm,
        "dense": cin * f,
    }.get(layer.op, 0)


def _warnings(model: Model, analysis: Analysis) -> list[str]:
    h, w, _ = model.input_shape
    warnings = []
    by_index = {0: ((1, 1),)}
    for layer, row in zip(model.layers, analysis.rows):
        by_index[layer.index] = (row.rf,)
        if layer.op not in WINDOW_OPS or layer.kernel == (1, 1):  # a 1x1 window never adds context
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


def _op_name(layer: Layer) -> str:
    return layer.activation if layer.op == "act" else layer.op
