"""Per-axis arithmetic of a sliding window, exactly as TensorFlow does it.

TF's SAME padding keeps ceil(n / s) outputs and pads `total = max((out-1)*s + k_eff - n, 0)`,
putting the smaller half *before*: n=32, k=3, s=2 pads 0 before and 1 after.
"""
from __future__ import annotations


def effective_kernel(kernel: int, dilation: int) -> int:
    return dilation * (kernel - 1) + 1


def output_size(n: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length along one axis; may be < 1, which the caller reports."""
    if padding == "same":
        return -(-n // stride)
    return (n - effective_kernel(kernel, dilation)) // stride + 1


def pad_before(n: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    if padding != "same":
        return 0
    out = output_size(n, kernel, stride, dilation, padding)
    total = max((out - 1) * stride + effective_kernel(kernel, dilation) - n, 0)
    return total // 2
