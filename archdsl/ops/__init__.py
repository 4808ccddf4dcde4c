"""The op registry: every op of the language, one class each (see `base`).

    from archdsl.ops import OPS, op_of
    op_of(layer).params(layer)

Importing this package registers every op; an op's module is the one place that knows it.
"""
from __future__ import annotations

from . import conv, dense, elementwise, merge, pool, upsample  # noqa: F401  (each registers its ops)
from .base import MAX_DIM, OPS, Op, OpSignature, WindowOp, op_of, post_name, post_step, relative_geometry

__all__ = ["OPS", "MAX_DIM", "Op", "OpSignature", "WindowOp", "op_of", "post_name", "post_step", "relative_geometry"]
