"""Per-axis arithmetic of a sliding window, exactly as TensorFlow does it: the one padding function.

TF's SAME padding keeps ceil(n / s) outputs and pads `total = max((out-1)*s + k_eff - n, 0)`,
putting the smaller half *before*: n=32, k=3, s=2 pads 0 before and 1 after.
Every consumer (the analysis, the Keras back-end, the exporters, `rf --verify`) asks `pads`.

A window's receptive-field step, per axis (`window_axis`), with kernel k, dilation d, stride s:
    k_eff = d*(k-1) + 1
    rf    = rf_in + (k_eff - 1) * jump_in
    jump  = jump_in * s
    start = start_in + ((k_eff - 1)/2 - pad_before) * jump_in
"""
from __future__ import annotations


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


def window_axis(k, s, d, before, rf, jump, start):
    """(rf, jump, start) after a window along one axis (`before`: the zeros padded before), from its input's."""
    k_eff = effective_kernel(k, d)
    return rf + (k_eff - 1) * jump, jump * s, start + ((k_eff - 1) / 2 - before) * jump


def union(inputs: list[tuple]):
    """RF of a merge: the union of the inputs' intervals of the first output unit."""
    rf, jump, start = [], [], []
    for a in (0, 1):
        lo = min(s[a] - (r[a] - 1) / 2 for r, _, s in inputs)
        hi = max(s[a] + (r[a] - 1) / 2 for r, _, s in inputs)
        rf.append(int(hi - lo + 1))
        jump.append(max(j[a] for _, j, _ in inputs))
        start.append((lo + hi) / 2)
    return tuple(rf), tuple(jump), tuple(start)
