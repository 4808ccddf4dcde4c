"""Keras model -> a deployable file: TFLite (float32, or full-integer int8) and ONNX.

Both take the Keras model as it is, normaliser included, so the file reads raw pixels 0..255
as the model does. TFLite gets a batch of 1 (what a deploy target runs, and it makes every
tensor's shape static); ONNX keeps the batch open (`None`), as ONNX Runtime batches well.

ONNX goes through tf2onnx: it converts the TensorFlow graph of our TensorFlow version without
another framework (Keras' own `model.export(format="onnx")` calls tf2onnx too for the TensorFlow
back-end; PyTorch's exporter would need the model rebuilt in torch, and torch, at export time).

The converters talk: TensorFlow's MLIR converter and tf2onnx write to the native stdout and
stderr. `captured_output` keeps that out of the user's terminal and hands it back for a
failure's message (or passes it on, `--verbose`).
"""
from __future__ import annotations

import re
from contextlib import contextmanager

import keras
import numpy as np

from .tensorflow_start import captured_output

ONNX_OPSET = 17   # ONNX Runtime 1.16+ and Netron read it; LayerNormalization and friends are ops of their own


class ConversionFailed(RuntimeError):
    """A converter refused the model; `layer` is the Keras layer its message names, if any."""

    def __init__(self, target: str, reason: str, layer: str | None):
        super().__init__(reason)
        self.target, self.reason, self.layer = target, reason, layer


def fixed_batch(keras_model: keras.Model, batch: int = 1) -> keras.Model:
    """The same model, layer names and weights, with a static batch size."""
    inputs = keras.Input(batch_shape=(batch, *keras_model.input_shape[1:]), name="input")
    fixed = keras.models.clone_model(keras_model, input_tensors=inputs)
    fixed.set_weights(keras_model.get_weights())
    return fixed


def to_tflite(keras_model: keras.Model, representative=None, int8_io: bool = False,
              verbose: bool = False) -> bytes:
    """The .tflite file: float32, or with `representative` (a callable yielding [image batch of 1]) full-integer
    int8 (every op int8; `int8_io`: the input and output too, else float32 around quantize/dequantize)."""
    import tensorflow as tf
    converter = tf.lite.TFLiteConverter.from_keras_model(fixed_batch(keras_model))
    if representative is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    with captured_output(verbose) as noise:
        try:
            return converter.convert()
        except Exception as exc:  # noqa: BLE001 - the converters raise anything; named in the message
            failure = exc
    raise _failure("tflite int8" if representative is not None else "tflite", failure, noise.text, keras_model)


def to_onnx(keras_model: keras.Model, opset: int = ONNX_OPSET, verbose: bool = False) -> bytes:
    """The .onnx file (its input named "input", batch open)."""
    import logging

    import tensorflow as tf
    import tf2onnx
    logging.getLogger("tf2onnx").setLevel(logging.DEBUG if verbose else logging.ERROR)
    signature = (tf.TensorSpec((None, *keras_model.input_shape[1:]), tf.float32, name="input"),)
    with captured_output(verbose) as noise, _without_grappler_constant_folding():
        try:
            proto, _ = tf2onnx.convert.from_keras(keras_model, input_signature=signature, opset=opset,
                                                  custom_op_handlers={"Erfc": (_erfc_as_one_minus_erf, [])})
        except Exception as exc:  # noqa: BLE001 - the converters raise anything; named in the message
            failure = exc
        else:
            failure = None
    if failure is not None:
        raise _failure("onnx", failure, noise.text, keras_model)
    import onnx
    unconverted = [node for node in proto.graph.node if not onnx.defs.has(node.op_type, node.domain)]
    if unconverted:  # tf2onnx leaves an op it cannot express as the TensorFlow op, which no runtime has
        node = unconverted[0]
        why = (" (Keras runs a grouped conv as a compiled function, which tf2onnx cannot open)"
               if node.op_type in ("StatefulPartitionedCall", "PartitionedCall") else "")
        raise ConversionFailed("onnx", f"no ONNX op for TensorFlow's {node.op_type}{why}",
                               _layer_named(node.name, keras_model))
    _name_nodes_after_layers(proto, keras_model)
    return proto.SerializeToString()


def _name_nodes_after_layers(proto, keras_model: keras.Model) -> None:
    """Name each node tf2onnx made anew (`Conv__260`: a conv with its batch norm folded in, a transpose pushed
    through) after the layer whose weights or outputs it carries, as Netron shows it: `l04_conv16/Conv`."""
    layers = sorted((layer.name for layer in keras_model.layers), key=len, reverse=True)

    def layer_in(text: str) -> str | None:
        return next((name for name in layers if f"/{name}" in text or text.startswith(name)), None)

    taken = {node.name for node in proto.graph.node}
    for node in proto.graph.node:
        if layer_in(node.name):
            continue
        # the weights (a folded conv's own kernel), then what it writes; never only what it reads (a Resize
        # reading l03's output is not l03)
        found = next(filter(None, map(layer_in, [*node.input[1:], *node.output])), None)
        if found is None:
            continue
        name, n = f"{found}/{node.op_type}", 1
        while name in taken:
            n += 1
            name = f"{found}/{node.op_type}_{n}"
        taken.add(name)
        node.name = name


def _erfc_as_one_minus_erf(ctx, node, name, args):
    """tf2onnx has no handler for TensorFlow's Erfc, which Keras' exact gelu (x/2 * erfc(-x/sqrt 2)) uses:
    ONNX has Erf, and erfc(x) = 1 - erf(x)."""
    from tf2onnx import utils
    node.type = "Erf"
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=np.float32))
    subtract = ctx.insert_new_node_on_output("Sub", node.output[0], name=utils.make_name(f"{node.name}_erfc"))
    ctx.replace_inputs(subtract, [one.output[0], node.output[0]])
    ctx.copy_shape(node.output[0], subtract.output[0])
    ctx.set_dtype(subtract.output[0], ctx.get_dtype(node.output[0]))


@contextmanager
def _without_grappler_constant_folding():
    """tf2onnx runs TensorFlow's graph optimiser (grappler) with constant folding first; on TensorFlow 2.21
    its Mul-into-Conv rewrite aborts the process (a failed CHECK, no exception) on some batch-norm chains
    (the `bn` op's sample). Within the block grappler runs without it; tf2onnx's own ONNX optimisers
    fold the constants afterwards (the graphs are as small, the outputs equal Keras')."""
    from tensorflow.python.grappler import tf_optimizer
    original = tf_optimizer.OptimizeGraph

    def optimize(config, metagraph, *args, **kwargs):
        optimizers = config.graph_options.rewrite_options.optimizers
        kept = [name for name in optimizers if name != "constfold"]
        del optimizers[:]
        optimizers.extend(kept)
        return original(config, metagraph, *args, **kwargs)

    tf_optimizer.OptimizeGraph = optimize
    try:
        yield
    finally:
        tf_optimizer.OptimizeGraph = original


def _failure(target: str, exc: Exception, noise: str, keras_model: keras.Model) -> ConversionFailed:
    text = f"{exc}\n{noise}"
    reason = next((line.strip() for line in text.splitlines() if "error:" in line.lower()), "")
    reason = reason or " ".join(str(exc).split())
    return ConversionFailed(target, re.sub(r"^.*?error:\s*", "", reason, flags=re.IGNORECASE)[:300],
                            _layer_named(text, keras_model))


def _layer_named(text: str, keras_model: keras.Model) -> str | None:
    """The first of the model's layers that `text` names (the converters name ops by their layer's scope)."""
    names = sorted((layer.name for layer in keras_model.layers), key=len, reverse=True)
    found = [(text.find(name), -len(name), name) for name in names if name in text]
    return min(found)[2] if found else None  # the first named; of names there, the longest (l01_conv32_gelu)


def representative_images(x_uint8: np.ndarray):
    """The converter's calibration input: each image as a float32 batch of 1 (raw pixels, as the model reads)."""
    def images():
        for image in x_uint8:
            yield [np.asarray(image, dtype=np.float32)[None]]
    return images
