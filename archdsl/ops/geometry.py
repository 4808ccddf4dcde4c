"""Per-axis arithmetic of a sliding window, exactly as TensorFlow does it: the one padding function.

TF's SAME padding keeps ceil(n / s) outputs and pads `total = max((out-1)*s + k_eff - n, 0)`,
putting the smaller half *before*: n=32, k=3, s=2 pads 0 before and 1 after.
Every consumer (the analysis, the Keras back-end, the exporters, `rf --verify`) asks `pads`.

A window's receptive-field step, per axis, with kernel k, dilation d, stride s, on an input whose
units step by jump_in (what `window` computes, exactly, as fields of whole pixels):
    k_eff = d*(k-1) + 1
    rf    = rf_in + (k_eff - 1) * jump_in
    jump  = jump_in * s
    start = start_in + ((k_eff - 1)/2 - pad_before) * jump_in
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction


def effective_kernel(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def output_size(n: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length along one axis; may be < 1, which the caller reports."""
    if padding == "same":
        return -(-n // stride)
    return (n - effective_kernel(kernel, dilation)) // stride + 1


def pads(n: int, kernel: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(before, after): the zeros TF's padding adds along one axis (none for `valid`)."""
    if padding != "same":
        return 0, 0
    out = output_size(n, kernel, stride, dilation, padding)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - n, 0)
    return total // 2, total - total // 2


def pad_before(n: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    return pads(n, kernel, stride, dilation, padding)[0]


# ---------------------------------------------------------------------------------------------------------------
# Which input pixels each unit sees, along one axis. A stack of windows moves its units' fields by a whole
# jump a unit; an upsampling does not (nearest x2: units 0 and 1 both see pixel 0, units 2 and 3 pixel 1), so the
# fields repeat with a period of several units. `Axis` is exact for both.

@dataclass(frozen=True)
class Axis:
    """Unit i = q * period + r sees input pixels [lo[r] + q * step, hi[r] + q * step] (unclipped: as if the input
    went on past its edges, which is where padding and the image's border cut it)."""
    period: int                 # units after which the fields repeat, moved by `step` pixels
    step: int
    lo: tuple[int, ...]
    hi: tuple[int, ...]

    def interval(self, i: int) -> tuple[int, int]:
        q, r = divmod(i, self.period)
        return self.lo[r] + q * self.step, self.hi[r] + q * self.step

    @property
    def rf(self) -> int:
        """The widest field of a unit (every unit's, without upsampling)."""
        return max(h - l + 1 for l, h in zip(self.lo, self.hi))

    @property
    def jump(self) -> int | Fraction:
        """Input pixels from one unit to the next, on average over a period: whole for windows, 1/2 after x2."""
        jump = Fraction(self.step, self.period)
        return jump.numerator if jump.denominator == 1 else jump

    @property
    def start(self) -> float:
        """The centre of unit 0's field."""
        return (self.lo[0] + self.hi[0]) / 2


INPUT_AXIS = Axis(1, 1, (0,), (0,))


def _reduced(period: int, step: int, lo: list[int], hi: list[int]) -> Axis:
    """The same fields with the shortest period that repeats them."""
    for p in range(1, period + 1):
        if period % p == 0 and step * p % period == 0:
            shift = step * p // period
            if all(lo[r + p] == lo[r] + shift and hi[r + p] == hi[r] + shift for r in range(period - p)):
                return Axis(p, shift, tuple(lo[:p]), tuple(hi[:p]))
    return Axis(period, step, tuple(lo), tuple(hi))


def window(axis: Axis, k: int, s: int, d: int, before: int) -> Axis:
    """A window of k taps, dilation d, stride s over an input padded by `before`: unit j reads input units
    j*s - before + t*d, t = 0..k-1, and sees from the first one's first pixel to the last one's last."""
    period = axis.period // math.gcd(axis.period, s)
    step = axis.step * (period * s // axis.period)
    lo = [axis.interval(j * s - before)[0] for j in range(period)]
    hi = [axis.interval(j * s - before + (k - 1) * d)[1] for j in range(period)]
    return _reduced(period, step, lo, hi)


def upsample(axis: Axis, factor: int, interpolation: str) -> Axis:
    """Nearest: unit j is input unit j // factor. Bilinear (half-pixel centres, as TF and PyTorch's
    align_corners=False): unit j sits at x = (j + 0.5) / factor - 0.5 of the input and mixes units floor(x) and
    floor(x) + 1 (only floor(x) where x is whole)."""
    period = axis.period * factor
    lo, hi = [], []
    for j in range(period):
        if interpolation == "nearest":
            first = last = j // factor
        else:
            first, rest = divmod(2 * j + 1 - factor, 2 * factor)
            last = first + (1 if rest else 0)
        lo.append(axis.interval(first)[0])
        hi.append(axis.interval(last)[1])
    return _reduced(period, axis.step, lo, hi)


def union(axes: list[Axis]) -> Axis:
    """A merge: each unit sees what the unit of that index sees on any path. Feature maps must step alike
    (analysis says E264 otherwise); vectors need not (after gap, each unit sees its whole map): then the first
    unit's fields are joined and the largest jump stands."""
    if len({a.jump for a in axes}) > 1:
        jump = Fraction(max(a.jump for a in axes))
        lo, hi = min(a.interval(0)[0] for a in axes), max(a.interval(0)[1] for a in axes)
        return Axis(jump.denominator, jump.numerator, (lo,) * jump.denominator, (hi,) * jump.denominator)
    period = math.lcm(*(a.period for a in axes))
    step = period * axes[0].step // axes[0].period
    lo = [min(a.interval(r)[0] for a in axes) for r in range(period)]
    hi = [max(a.interval(r)[1] for a in axes) for r in range(period)]
    return _reduced(period, step, lo, hi)
