"""archdsl: a declarative architecture language and compiler for convolutional networks.

    from archdsl import load, analyze
    model = load("specs/best.arch")      # parse + resolve: the IR
    table = analyze(model)               # RF, jump, start, params, MACs per layer

TensorFlow is imported only inside the code that builds or runs a model (`archdsl.keras_backend`,
training, `eval`, `rf --verify`); parsing, analysis and the tables never import it.
"""
from __future__ import annotations

import os

__version__ = "0.1.0"


def load(path: str | os.PathLike):
    """Parse and resolve a .arch file into the IR (`archdsl.ir.Model`)."""
    from .language.parser import parse_file
    from .language.resolve import resolve
    return resolve(parse_file(path))


def loads(text: str, file: str = "<spec>"):
    """Parse and resolve spec text."""
    from .language.parser import parse
    from .language.resolve import resolve
    return resolve(parse(text, file))


def analyze(model):
    from .analysis import analyze as _analyze
    return _analyze(model)
