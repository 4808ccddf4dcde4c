"""Each spec, example and op sample as a Keras model and as its float32 .tflite, made once a test session.

TensorFlow's converter through archdsl's `to_tflite` (batch 1) is slow (about 2 s a model, 30 s for ResNet-18):
tests/test_deploy.py checks that the file computes what Keras does, tests/test_memory.py that the peak of its
tensors' lifetimes is archdsl's, on the same conversion.
"""
from __future__ import annotations

import functools

import archdsl
from archdsl.ops import OPS
from spec_files import ROOT, spec_paths


def sample(name: str) -> str:  # as tests/test_ops_registry.py builds each op's sample
    return f"model sample_{name}\ninput 11x9x4\nconv 3x3 4 same\n{OPS[name].sample}\n"


CASES = {**{p: (ROOT / p).read_text() for p in spec_paths()}, **{f"op:{n}": sample(n) for n in OPS}}


@functools.cache
def keras_model(case: str):
    from archdsl.keras_backend.compile import compile
    return compile(archdsl.loads(CASES[case]))


@functools.cache
def float_tflite(case: str) -> bytes:
    from archdsl.keras_backend.convert import to_tflite
    return to_tflite(keras_model(case))
