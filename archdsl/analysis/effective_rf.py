"""Statistics of an effective receptive field: a layer's centre-unit heat map against its theoretical field.

    stats = erf_stats(heat, row, unit, input_size=(32, 32))

`heat` is a non-negative map over input pixels (`keras_backend.erf` measures it); `origin` says
which of its pixels is input pixel (0, 0) (a map measured on a canvas with a margin has origin
(margin, margin)). Per axis, on the map's marginal along that axis (the sum over the other):

- the mass centre, in input pixels;
- for p in PERCENTS, the width 2k+1 of the smallest run of whole pixels [m-k, m+k] around m, the
  pixel nearest the mass centre, that holds at least p % of the marginal's mass (the part of the
  run outside the map holds nothing: there the run is cut by the border, and `cut` says so);
- whether the theoretical field of the unit reaches past the input (`field_clipped`): then the
  image cuts the ERF there too, and its widths are a lower bound.

The fraction of the map's mass outside the theoretical field is exactly 0 for any weights: a unit
does not depend on a pixel outside its field (tests check it on every spec).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import LayerStats

PERCENTS = (50, 90, 95)
ROUNDING = 1e-9  # a run holds p % when its mass is within this fraction of the total below p %


@dataclass(frozen=True)
class ErfStats:
    index: int
    unit: tuple[int, int]                      # the output unit measured (row, column)
    rf: tuple[int, int]                        # the theoretical field (rows, columns)
    theory_centre: tuple[float, float]         # the theoretical field's centre, input pixels
    centre: tuple[float, float] | None         # the map's mass centre; None if the unit sees nothing
    widths: dict[int, tuple[int, int]]         # p -> widths (rows, columns) in whole pixels
    cut: dict[int, tuple[bool, bool]]          # p -> the run reached past the map's border
    field_clipped: tuple[bool, bool]           # the theoretical field reaches past the input
    outside: float                             # fraction of the mass outside the theoretical field

    def ratio(self, p: int = 90) -> tuple[float, float]:
        """ERF width over theoretical rf, per axis."""
        return tuple(w / r for w, r in zip(self.widths.get(p, (0, 0)), self.rf))


def erf_stats(heat, row: LayerStats, unit: tuple[int, int], input_size: tuple[int, int],
              origin: tuple[int, int] = (0, 0)) -> ErfStats:
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2 or (heat < 0).any():
        raise ValueError(f"a heat map is a 2-D non-negative array, not {heat.shape}")
    fields = [row.interval(unit[a], a) for a in (0, 1)]
    theory = tuple(float(lo + hi) / 2 for lo, hi in fields)
    clipped = tuple(bool(lo < 0 or hi > input_size[a] - 1) for a, (lo, hi) in enumerate(fields))
    total = float(heat.sum())
    inside = _inside(heat.shape, fields, origin)
    outside = float(heat[~inside].sum() / total) if total > 0 else 0.0
    if total <= 0:
        return ErfStats(row.index, unit, row.rf, theory, None, {}, {}, clipped, outside)
    marginals = (heat.sum(axis=1), heat.sum(axis=0))
    centre = tuple(float(np.dot(np.arange(len(m)) - origin[a], m) / m.sum()) for a, m in enumerate(marginals))
    widths, cut = {}, {}
    for p in PERCENTS:
        runs = [_run(m, centre[a] + origin[a], p) for a, m in enumerate(marginals)]
        widths[p] = tuple(r[0] for r in runs)
        cut[p] = tuple(r[1] for r in runs)
    return ErfStats(row.index, unit, row.rf, theory, centre, widths, cut, clipped, outside)


def _run(marginal: np.ndarray, centre: float, p: int) -> tuple[int, bool]:
    """(2k+1, cut): the smallest k such that [m-k, m+k] around m = the pixel nearest `centre` (a map index)
    holds p % of the marginal's mass, and whether that run reaches past the map."""
    n = len(marginal)
    m = min(max(math.floor(centre + 0.5), 0), n - 1)
    prefix = np.concatenate([[0.0], np.cumsum(marginal)])
    need = p / 100 * prefix[-1] * (1 - ROUNDING)
    for k in range(n):
        lo, hi = max(m - k, 0), min(m + k, n - 1)
        if prefix[hi + 1] - prefix[lo] >= need:
            return 2 * k + 1, m - k < 0 or m + k > n - 1
    raise AssertionError("the whole marginal holds its own mass")


def _inside(shape, fields, origin) -> np.ndarray:
    """Which pixels of the map lie in the theoretical field [lo, hi] along both axes."""
    masks = []
    for a, (lo, hi) in enumerate(fields):
        coords = np.arange(shape[a]) - origin[a]
        masks.append((coords >= lo) & (coords <= hi))
    return masks[0][:, None] & masks[1][None, :]
