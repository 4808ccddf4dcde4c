"""Empirical receptive fields: ask the built Keras model which input pixels each unit sees.

`analysis.py` derives rf, jump and start with formulas; this module checks them against
TensorFlow itself, exactly (no threshold, no estimate):

1. Build the model (`compile.compile`) and clone it (`keras.models.clone_model`)
   into a *linear, positive twin* (`linear_twin`): max pooling becomes average pooling
   with the same window, stride and padding (the gradient of a max reaches only the argmax);
   activations, dropout and batch norm become identities; every convolution becomes a
   window with the same kernel size, stride, dilation and padding whose taps are all
   1/(kh*kw), and no bias; the arithmetic is float64. The gradient of a unit with respect
   to the input is then > 0 exactly on the pixels the unit sees: all paths add, none
   cancel, and nothing underflows on any realistic depth.
2. The twin works channel by channel, and channel b carries target unit b (a layer, a row,
   a column): conv, sep and dw all become per-channel windows and concat becomes add.
   With positive weights, how channels mix does not change which pixels a unit (summed
   over its channels) sees. The loss is the sum over b of channel b of unit b, so one
   forward and one backward pass (`tape.gradient`) measure every unit at once. For each
   spatial layer we measure its first, middle and last unit; two positions pin the jump.
3. The twin is measured on two inputs:
   - the model's own input. TF's padding cuts the receptive field there, so the analytic
     interval `start + i*jump +- (rf-1)/2` is compared CLIPPED to [0, n-1];
   - an enlarged *canvas*: the input with a margin of M pixels on each side, M a multiple
     of every layer's jump and as wide as any RF can reach past the image. TF's SAME
     padding is then the same at every layer, unit i of a layer is unit i + M/jump of the
     canvas, and the padding lies beyond every measured RF, so the measured interval must
     equal the analytic one, unclipped: rf, jump and start are each pinned.
   Clipping alone is not exact: when an RF has holes (dilation, or a stride larger than
   the kernel) a unit near the border can stop short of the image's edge (its outer taps
   fall on padding), a `valid` layer can drop the last pixels, and when the RF is wider
   than the image both ends are clipped, so nothing pins rf and start apart.
"""
from __future__ import annotations

import math
from fractions import Fraction
from dataclasses import dataclass

from . import linear_twin
from .memory import check_measurement
from ..analysis import Analysis, LayerStats
from ..ir import Layer, Model
from ..ops import op_of

Interval = tuple[int, int]          # first and last input pixel along one axis, inclusive
Unit = tuple[int, int]              # (row, column) of an output unit


@dataclass(frozen=True)
class Measurement:
    """What one layer's units see: unit -> (rows interval, columns interval), in input pixels.

    `image` is measured on the model's own input, `canvas` on the enlarged canvas (same
    coordinates: a canvas interval may start below 0 or end past n-1). An interval is
    None if the unit sees no pixel along that axis (its windows fall on padding only).
    """
    image: dict[Unit, tuple[Interval | None, Interval | None]]
    canvas: dict[Unit, tuple[Interval | None, Interval | None]]


@dataclass(frozen=True)
class UnitCheck:
    unit: Unit
    analytic: tuple[tuple[float, float], tuple[float, float]]   # unclipped, per axis
    image: tuple[Interval | None, Interval | None]
    canvas: tuple[Interval | None, Interval | None]


@dataclass(frozen=True)
class VerifyRow:
    index: int
    name: str
    output_shape: tuple[int, ...]
    rf: tuple[int, int]
    jump: tuple[int, int]
    start: tuple[float, float]
    measured_rf: tuple[int | None, int | None]
    measured_jump: tuple[float | None, float | None]
    measured_start: tuple[float | None, float | None]
    units: tuple[UnitCheck, ...]
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class VerifyReport:
    rows: list[VerifyRow]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    def render(self) -> str:
        header = ("layer", "output", "analytic rf / jump / start", "measured rf / jump / start", "")
        table = [header]
        for r in self.rows:
            verdict = "ok" if r.ok else "MISMATCH: " + "; ".join(r.problems)
            table.append((r.name, "x".join(map(str, r.output_shape)), _geometry_text(r.rf, r.jump, r.start),
                          _geometry_text(r.measured_rf, r.measured_jump, r.measured_start), verdict))
        widths = [max(len(row[c]) for row in table) for c in range(len(header) - 1)]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in table]
        lines = [line.rstrip() for line in lines]
        bad = sum(1 for r in self.rows if not r.ok)
        n = len(self.rows)
        lines.append(f"verified {n} layer{'s' if n != 1 else ''}: "
                     + ("all agree" if not bad else f"{bad} of {n} disagree"))
        return "\n".join(lines)


def verify_rf(model: Model, analysis: Analysis | None = None) -> VerifyReport:
    """Measure every spatial layer's receptive field on the built model and compare with `analysis`."""
    if analysis is None:
        from ..analysis import analyze
        analysis = analyze(model)
    stats = {r.index: r for r in analysis.rows}
    measured = measure_rf(model)
    edges = _edges(model)
    n = model.input_shape[:2]
    rows = []
    for index, m in measured.items():
        layer, row = model.layer(index), stats[index]
        units, problems = [], []
        for unit in m.image:
            analytic = tuple(_analytic(row, unit[a], a) for a in (0, 1))
            units.append(UnitCheck(unit, analytic, m.image[unit], m.canvas[unit]))
            problems += _check_image(unit, analytic, m.image[unit], n, edges[index])
            for a in (0, 1):
                problems += _check_canvas(unit, a, analytic[a], m.canvas[unit][a])
        rf, jump, start = _measured_geometry(units, tuple(axis.period for axis in row.axes))
        rows.append(VerifyRow(index, layer.name, layer.output_shape, row.rf, row.jump, row.start,
                              rf, jump, start, tuple(units), tuple(problems)))
    return VerifyReport(rows)


def _items_per_pass(pixels: int, layers: int, budget: int = 512 * 2**20) -> int:
    """How many units one pass may measure: each is a channel of float64 maps and their gradients."""
    return max(1, budget // (16 * pixels * layers))


def measure_rf(model: Model) -> dict[int, Measurement]:
    """IR index -> what the first, middle and last units of that spatial layer see (see `Measurement`)."""
    import keras

    from .compile import compile, layer_outputs

    spatial = [layer.index for layer in model.layers if _measured(layer)]
    if not spatial:
        return {}
    margin = canvas_margin(model)
    h, w, _ = model.input_shape
    deepest = max(spatial)
    check_measurement(model, (h + 2 * margin[0], w + 2 * margin[1]),
                      sum(1 + len(layer.post) for layer in model.layers if layer.index <= deepest))
    keras_model = compile(model)
    names = layer_outputs(model)
    # only the layers up to the deepest feature map: the head is not measured
    trunk = keras.Model(keras_model.input, [keras_model.get_layer(names[i]).output for i in spatial])
    items = [(k, index, unit) for k, index in enumerate(spatial) for unit in _units(model.layer(index).output_shape)]
    chunk = min(len(items), _items_per_pass((h + 2 * margin[0]) * (w + 2 * margin[1]), len(trunk.layers)))
    twin = linear_twin.clone(trunk, chunk, model)
    image = _footprints(twin, items, (0, 0), model, chunk)
    # nothing padded: the canvas would be the image itself
    canvas = _footprints(twin, items, margin, model, chunk) if margin != (0, 0) else image
    return {i: Measurement(image[i], canvas[i]) for i in spatial}


# --- measuring ------------------------------------------------------------------------------

def _footprints(twin, items: list[tuple[int, int, Unit]], margin: tuple[int, int], model: Model,
                chunk: int) -> dict[int, dict[Unit, tuple]]:
    """Measure every item (output k of the twin, IR index, unit) on an input with `margin` extra pixels a side.

    One forward and one backward pass: item b travels in channel b, and the loss is the sum
    over b of channel b of item b's unit. (Very large inputs take several passes of `chunk` items.)
    """
    import tensorflow as tf

    h, w, _ = model.input_shape
    size = (h + 2 * margin[0], w + 2 * margin[1])
    result: dict[int, dict[Unit, tuple]] = {}
    for lo in range(0, len(items), chunk):
        part = items[lo:lo + chunk]
        part += [part[-1]] * (chunk - len(part))  # the twin is `chunk` channels wide
        x = tf.ones((1, *size, chunk), dtype=tf.float64)
        with tf.GradientTape() as tape:
            tape.watch(x)
            outs = twin(x, training=False)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            picks: dict[int, list] = {}
            for b, (k, index, (y, x_)) in enumerate(part):
                dy, dx = canvas_offset(model.layer(index).output_shape, outs[k].shape, margin)
                picks.setdefault(k, []).append((0, y + dy, x_ + dx, b))
            loss = tf.add_n([tf.reduce_sum(tf.gather_nd(outs[k], p)) for k, p in picks.items()])
        grad = tape.gradient(loss, x).numpy()[0]
        for b, (_, index, unit) in enumerate(part):
            seen = grad[..., b] > 0
            result.setdefault(index, {})[unit] = (_extent(seen.any(axis=1), margin[0]),
                                                  _extent(seen.any(axis=0), margin[1]))
    return result


def canvas_offset(shape, twin_shape, margin) -> tuple[int, int]:
    """Where unit (0, 0) of a layer sits in the twin's map: the canvas adds margin / jump positions a side."""
    (h, w), (th, tw) = shape[:2], tuple(twin_shape[1:3])
    dy, dx = (th - h) // 2, (tw - w) // 2
    # every path into a layer steps by the same jump (analysis rejects a merge that does not),
    # so the canvas adds the same margin / jump to both sides of every map
    if (th, tw) != (h + 2 * dy, w + 2 * dx) or min(dy, dx) < 0 or (margin == (0, 0) and (dy, dx) != (0, 0)):
        raise AssertionError(f"the twin makes a {th}x{tw} map where the model has {h}x{w} (margin {margin})")
    return dy, dx


def _extent(mask, margin: int) -> Interval | None:
    import numpy as np
    hits = np.flatnonzero(mask)
    return (int(hits[0]) - margin, int(hits[-1]) - margin) if hits.size else None


def _measured(layer: Layer) -> bool:
    return layer.spatial and not op_of(layer).is_global


def _units(shape) -> list[Unit]:
    """The first, second, middle and last units: after an upsampling, the fields of neighbours differ."""
    h, w = shape[0], shape[1]
    return sorted({(0, 0), (min(1, h - 1), min(1, w - 1)), (h // 2, w // 2), (h - 1, w - 1)})


def canvas_margin(model: Model) -> tuple[int, int]:
    """Margin per axis: a multiple of every layer's period in pixels, at least as far as any RF reaches past the
    image.

    Computed from the IR's windows, not from the analysis under test. Only padded windows let an RF reach past
    the image, each by its padding times its input's jump; a bilinear upsampling by one of its input's units.
    Shifting the image by the margin must shift every layer's units by whole periods of their fields: a
    multiple of every jump's numerator on the way (an upsampled layer's jump is a fraction) does that.
    """
    jump = {0: (Fraction(1), Fraction(1))}
    reach, period = [Fraction(0), Fraction(0)], [1, 1]
    for layer in model.layers:
        j_in = tuple(max(jump[i][a] for i in layer.inputs) for a in (0, 1))  # equal on every path (E264)
        out = []
        for a in (0, 1):
            window = op_of(layer).window(layer, a)
            if window is not None:
                _, _, stride, _, before, after = window
                reach[a] += max(before, after) * j_in[a]
                out.append(j_in[a] * stride)
            else:
                reach[a] += op_of(layer).canvas_reach(layer, a) * j_in[a]
                out.append(j_in[a] / (layer.factor[a] if layer.factor else 1))
            period[a] = math.lcm(period[a], out[a].numerator)
        jump[layer.index] = tuple(out)
    return tuple(math.ceil(reach[a] / period[a]) * period[a] for a in (0, 1))


def _edges(model: Model) -> dict[int, tuple[tuple[bool, bool], tuple[bool, bool], bool]]:
    """Per layer (and axis), from the IR: (sparse, truncated, hollow) somewhere on the way from the input.

    sparse: a window with holes (dilation > 1, or stride > kernel): a unit's outer taps may
    skip the image's edge pixels. truncated: a `valid` window whose strides do not end on the
    last pixel ((n - k_eff) % s != 0): the last unit does not see the last pixels. hollow: a
    window some of whose units have every tap on padding along an axis: such a unit sees nothing
    at all, so a unit that reads it (through a merge, or a window over it) may see less than its
    interval along the other axis too.
    """
    flags = {0: ((False, False), (False, False), False)}
    for layer in model.layers:
        sparse = [any(flags[i][0][a] for i in layer.inputs) for a in (0, 1)]
        cut = [any(flags[i][1][a] for i in layer.inputs) for a in (0, 1)]
        hollow = any(flags[i][2] for i in layer.inputs)
        for a in (0, 1):
            window = op_of(layer).window(layer, a)
            if window is None:
                continue
            n, k, s, d, before, after = window
            sparse[a] = sparse[a] or d > 1 or s > k
            cut[a] = cut[a] or (n + before + after - (d * (k - 1) + 1)) % s != 0
            hollow = hollow or _has_a_padding_only_window(window)
        flags[layer.index] = (tuple(sparse), tuple(cut), hollow)
    return flags


def _has_a_padding_only_window(window) -> bool:
    n, k, s, d, before, after = window
    out = (n + before + after - (d * (k - 1) + 1)) // s + 1
    return any(not any(0 <= i * s - before + t * d < n for t in range(k)) for i in range(out))


# --- comparing --------------------------------------------------------------------------------

_AXES = ("rows", "cols")


def _analytic(row: LayerStats, i: int, a: int) -> tuple[int, int]:
    return row.interval(i, a)


def _check_canvas(unit: Unit, a: int, analytic, measured) -> list[str]:
    if measured is not None and measured == analytic:
        return []
    return [f"unit {_unit_text(unit)} sees {_AXES[a]} {_interval_text(measured)}, "
            f"analysis says {_interval_text(analytic)}"]


def _check_image(unit: Unit, analytic, measured, n: tuple[int, int], flags) -> list[str]:
    """On the model's own input: the analytic interval clipped to [0, n-1], as exactly as it can be.

    An end of the analytic interval inside the image must be met exactly. A clipped end
    must reach the image's edge when nothing on the way has holes (left edge) and nothing
    cut the last pixels off (right edge); otherwise it may stop short, but never pass it.
    A unit whose window is all padding sees nothing, which needs its interval to overhang
    the image on both sides along some axis. Behind a hollow layer (some of whose units see
    nothing) a unit may see any part of its clipped interval, or nothing: the canvas still
    pins its rf, jump and start exactly.
    """
    (sparse, cut, hollow), problems = flags, []
    if measured == (None, None):
        if hollow or any(analytic[a][0] < 0 and analytic[a][1] > n[a] - 1 for a in (0, 1)):
            return []
        return [f"on the {n[0]}x{n[1]} image unit {_unit_text(unit)} sees nothing"]
    for a in (0, 1):
        (a_lo, a_hi), m = analytic[a], measured[a]
        lo, hi = max(a_lo, 0), min(a_hi, n[a] - 1)
        if m is not None and lo <= m[0] <= m[1] <= hi \
                and (m[0] == lo or (a_lo < 0 and sparse[a]) or hollow) \
                and (m[1] == hi or (a_hi > n[a] - 1 and (sparse[a] or cut[a])) or hollow):
            continue
        problems.append(f"on the {n[0]}x{n[1]} image unit {_unit_text(unit)} sees {_AXES[a]} "
                        f"{_interval_text(m)}, analysis says {_interval_text((lo, hi))} (clipped)")
    return problems


def _measured_geometry(units: list[UnitCheck], periods: tuple[int, int]):
    """rf (the widest field measured), jump and start as the canvas measurement shows them (None where it cannot
    tell). The jump is read between the two farthest measured units a whole number of `periods` apart (after an
    upsampling, neighbours' fields do not step evenly; this only chooses which measurements to show)."""
    rf, jump, start = [None, None], [None, None], [None, None]
    for a in (0, 1):
        seen = sorted({(u.unit[a], u.canvas[a]) for u in units if u.canvas[a] is not None})
        if not seen:
            continue
        rf[a] = max(hi - lo + 1 for _, (lo, hi) in seen)
        (i0, (lo0, hi0)) = seen[0]
        start[a] = (lo0 + hi0) / 2  # the first unit measured is unit 0
        apart = [(i, (lo + hi) / 2) for i, (lo, hi) in seen[1:] if (i - i0) % periods[a] == 0]
        if apart:
            i1, centre = apart[-1]
            jump[a] = (centre - (lo0 + hi0) / 2) / (i1 - i0)
    return tuple(rf), tuple(jump), tuple(start)


def _num(x) -> str:
    if x is None:
        return "-"  # not measurable: a 1-unit axis has no jump
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _geometry_text(rf, jump, start) -> str:
    return f"{_num(rf[0])}x{_num(rf[1])} / {_num(jump[0])}x{_num(jump[1])} / {_num(start[0])},{_num(start[1])}"


def _unit_text(unit: Unit) -> str:
    return f"({unit[0]},{unit[1]})"


def _interval_text(interval) -> str:
    return "nothing" if interval is None else f"[{_num(interval[0])}, {_num(interval[1])}]"
