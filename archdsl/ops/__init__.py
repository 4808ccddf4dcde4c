"""The op registry: every op of the language, one class each (see `base`).

    from archdsl.ops import OPS, op_of
    op_of(layer).params(layer)

Importing this package registers every op; an op's module is the one place that knows it.
"""
from __future__ import annotations

from . import conv, dense, elementwise, merge, pool  # noqa: F401  (each registers its ops)
from .base import OPS, Op, OpSignature, WindowOp, op_of, post_name, post_step, relative_geometry
from .options import MAX_DIM, assert_name, canonical_op, language_word, option_word, read_options, unknown_op_hint, written_ops

WRITTEN_OPS = written_ops()

__all__ = ["WRITTEN_OPS", "assert_name", "OPS", "Op", "OpSignature", "WindowOp", "op_of", "post_name", "post_step", "relative_geometry", "MAX_DIM", "canonical_op",
           "language_word", "option_word", "read_options", "unknown_op_hint", "written_ops"]
