"""The language: a `.arch` file's text -> the written spec (with positions) -> the resolved IR.

    parser.parse(text, file) -> spec.Spec        grammar.lark, one statement a line
    resolve.resolve(spec)    -> ir.Model         repeats, blocks and merges expanded, defaults filled, shapes known
    formatter.format_spec(spec) -> str           `archdsl fmt`

An op's arguments are read by `options` from the op's signature in the registry (`archdsl.ops`).
No TensorFlow, graphviz or jinja2 here.
"""
from __future__ import annotations

import os


def load(path: str | os.PathLike):
    """Parse and resolve the .arch file at `path`: the IR (`archdsl.ir.Model`)."""
    from .parser import parse_file
    from .resolve import resolve
    return resolve(parse_file(path))


def loads(text: str, file: str = "<spec>"):
    """Parse and resolve spec text; `file` names it in error messages."""
    from .parser import parse
    from .resolve import resolve
    return resolve(parse(text, file))
