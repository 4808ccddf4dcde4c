"""Activation memory and the flash estimate (`rf --memory`, asserts `ram` and `flash`), against hand
computations and against the converted .tflite model (issue 29).

The truth for the peak: the model converted by TensorFlow's converter (batch 1), read with the LiteRT
interpreter; its tensors' lifetimes simulated in its execution order, here, independently of archdsl:
a tensor is alive from the operator that writes it (the input: from the start) to the last operator that
reads it (an output: to the end); the peak is the largest sum of live tensors' bytes at an operator.
"""
from __future__ import annotations

import numpy as np
import pytest

from converted import CASES, float_tflite, keras_model
from spec_files import ROOT, spec_paths

import archdsl
from archdsl.analysis.memory import activation_memory


def _memory(text: str):
    return activation_memory(archdsl.loads(text))


def test_a_chain_by_hand():
    # input 8x8x2 = 128; conv out 8x8x4 = 256; maxpool out 4x4x4 = 64; gap out 4; dense out 3
    memory = _memory("input 8x8x2\nconv 3x3 4 same bn relu\nmaxpool\ngap\ndense 3\n")
    assert [m.output_elements for m in memory.layers] == [256, 64, 4, 3]
    # while a layer runs, its input and its output are alive (bn and relu fold into the conv)
    assert [m.alive_elements for m in memory.layers] == [128 + 256, 256 + 64, 64 + 4, 4 + 3]
    assert memory.peak.index == 1 and memory.peak_elements == 384


def test_a_residuals_shortcut_stays_alive_across_the_body():
    text = ("input 8x8x4\nconv 1x1 4\nresidual {\n  conv 3x3 4 same relu\n  conv 3x3 4 same\n}\n")
    memory = _memory(text)
    # layer 1's output (256) is read again by the add (layer 4): alive while layers 2 and 3 run
    assert [m.alive_elements for m in memory.layers] == [256 + 256, 256 + 256, 256 + 256 + 256, 3 * 256]


def test_a_separable_conv_makes_its_depthwise_output_and_an_explicit_pad_its_padded_input():
    # sep 3x3 8 dm 2 on 6x6x3: the depthwise step writes 6x6x6 = 216, then the 1x1 step 6x6x8 = 288
    memory = _memory("input 6x6x3\nsep 3x3 8 same dm 2\n")
    assert memory.layers[0].alive_elements == max(108 + 216, 216 + 288)
    # pad 2 then a 3x3 valid conv on 6x6x1: the padded 10x10x1 = 100, then 8x8x2 = 128
    memory = _memory("input 6x6x1\nconv 3x3 2 pad 2\n")
    assert memory.layers[0].alive_elements == max(36 + 100, 100 + 128)
    # pad 1 on a 3x3 conv is what `same` adds: a converter folds it into the conv, no tensor of its own
    memory = _memory("input 6x6x1\nconv 3x3 2 pad 1\n")
    assert memory.layers[0].alive_elements == 36 + 72


def test_activations_a_converter_cannot_fuse_make_a_tensor():
    # gelu after a conv: the conv's output, then gelu's (16 each); swish: a sigmoid, then a multiply
    assert _memory("input 2x2x4\nconv 1x1 4 gelu\n").layers[0].alive_elements == 16 + 16
    assert _memory("input 2x2x4\nconv 1x1 4 swish\n").layers[0].alive_elements == 16 + 16 + 16
    assert _memory("input 2x2x4\nconv 1x1 4 relu\n").layers[0].alive_elements == 16 + 16


def test_ram_and_flash_asserts():
    spec = "input 8x8x2\nconv 3x3 4 same bn relu\nmaxpool\ngap\ndense 3\nassert ram <= {}\n"
    ok = archdsl.check(archdsl.loads(spec.format(384)))
    bad = archdsl.check(archdsl.loads(spec.format(383)))
    assert all(r.ok for r in ok) and not all(r.ok for r in bad)
    assert [r.actual for r in bad] == [384]


# --- against the converted .tflite model -------------------------------------------------------

def _simulated_peak(tflite: bytes) -> int:
    """The largest sum of live activation bytes at any operator of the .tflite model (see the module doc)."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_content=tflite)
    ops = interpreter._get_ops_details()
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    written = {d["index"]: -1 for d in interpreter.get_input_details()}
    for k, op in enumerate(ops):
        written.update({int(t): k for t in op["outputs"]})
    last = {t: born for t, born in written.items()}
    for k, op in enumerate(ops):
        for t in op["inputs"]:
            if int(t) in written:
                last[int(t)] = max(last[int(t)], k)
    for d in interpreter.get_output_details():
        last[d["index"]] = len(ops)
    size = {t: int(np.prod(details[t]["shape"])) * np.dtype(details[t]["dtype"]).itemsize for t in written}
    peak = 0
    for k in range(len(ops)):
        peak = max(peak, sum(size[t] for t in written if written[t] <= k <= last[t]))
    return peak


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_peak_equals_the_converted_models(case):
    pytest.importorskip("ai_edge_litert")
    # float32: 4 bytes an element; the conversion is shared with tests/test_deploy.py (tests/converted.py)
    assert activation_memory(archdsl.loads(CASES[case])).peak_elements * 4 == _simulated_peak(float_tflite(case))


SMALL = [p for p in spec_paths() if archdsl.load(ROOT / p).input_shape[0] <= 64]  # the float files
# int8 calibration takes seconds a model: the specs, a residual net and a dense head (2.3 % off at most on all 14)
INT8 = [p for p in SMALL if p.startswith("specs/")] + ["examples/resnet8.arch", "examples/mnist_lenet.arch"]


@pytest.mark.parametrize("path", SMALL)
def test_the_flash_estimate_is_within_10_percent_of_the_tflite_files(path):
    import tensorflow as tf
    model = archdsl.load(ROOT / path)
    memory = activation_memory(model)
    assert abs(memory.flash_float32 / len(float_tflite(path)) - 1) < 0.10
    if path not in INT8:
        return
    from archdsl.keras_backend.convert import fixed_batch
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch(keras_model(path)))
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    converter.representative_dataset = lambda: ([rng.standard_normal((1, *model.input_shape)).astype("float32")]
                                                for _ in range(4))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    assert abs(memory.flash_int8 / len(converter.convert()) - 1) < 0.10


def test_the_report_shows_each_layers_memory_and_marks_the_peak(tmp_path):
    from archdsl.cli import main
    out = tmp_path / "best.md"
    assert main(["report", str(ROOT / "specs/best.arch"), "-o", str(out)]) == 0
    text = out.read_text()
    # best.arch's layer 5 (sep 3x3 64 on 32x32x48): the depthwise output 49,152 and the output 65,536 at once
    assert "| 5 | `sep 3x3 64 same drop 0.05 bn relu` | 65,536 | 114,688 (peak) |" in text
    assert "Peak **114,688 bytes** at int8 (458,752 at float32) while layer 5 runs" in text
