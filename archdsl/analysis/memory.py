"""Activation memory: which tensors are alive while each layer runs, and the peak over the model.

    memory = activation_memory(model)      # per layer, and the peak (elements; bytes = elements x dtype size)

The model runs layer by layer, in the spec's order. A layer runs in steps: the tensors its op makes
before its output (`Op.step_shapes`: an explicit padding, a separable conv's depthwise output), its
output, then the tensors its post-op steps make (`post_tensors`: an activation the op before cannot
take in, a batch norm it cannot fold). While a step runs, alive are: what it reads, what it writes,
and every earlier tensor a later step still reads (a residual's shortcut stays alive across the
body). The model's input is alive until its last reader; the model's output to the end.

Dropout does nothing at inference, a batch norm after a conv or dense layer is folded into its
weights, and relu/relu6 run inside the op before them where that op can (TFLite's fused
activations): none of those adds a tensor. This is how a converter lowers the graph; docs/deploy.md
compares it with the tensors of the converted `.tflite` model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..ir import Model
from ..ops import op_of, post_step

INT8, FLOAT32 = 1, 4   # bytes an element
# A .tflite file besides its tensors' data: operator codes, the signature, metadata (FILE_BYTES), and an entry
# per tensor (name, shape, type, buffer: TENSOR_BYTES); an int8 tensor adds a float32 scale and an int64 zero
# point per channel. Fitted to the files TensorFlow's converter wrote for specs/ and examples/ (docs/deploy.md).
FILE_BYTES, TENSOR_BYTES, QUANT_BYTES = 2400, 73, 12


@dataclass(frozen=True)
class LayerMemory:
    index: int
    output_elements: int     # the layer's output tensor
    alive_elements: int      # the most elements alive during any of the layer's steps
    steps: int               # how many tensors the layer makes (its output included)


@dataclass(frozen=True)
class ActivationMemory:
    layers: tuple[LayerMemory, ...]
    input_elements: int
    flash_int8: int = 0      # estimated bytes of the model converted to int8 (.tflite)
    flash_float32: int = 0   # the same, float32

    @property
    def peak(self) -> LayerMemory:
        """The layer while which the most elements are alive (the first of equals)."""
        return max(self.layers, key=lambda m: m.alive_elements)

    @property
    def peak_elements(self) -> int:
        return self.peak.alive_elements


def activation_memory(model: Model) -> ActivationMemory:
    steps = []      # per step: (layer index, the tensors it reads, the tensor it writes)
    sizes = {("out", 0): math.prod(model.input_shape)}
    for layer in model.layers:
        # the layer's tensors in order, each with how far back its step reads beyond the tensor before it
        chain = [(shape, None) for shape in op_of(layer).step_shapes(layer)] + [(layer.output_shape, None)]
        for p in layer.post:
            made = post_step(p).post_tensors(p, layer)
            again = len(chain) - 1 if made > 1 and post_step(p).post_rereads(p) else None
            chain += [(layer.output_shape, again if k == made - 1 else None) for k in range(made)]
        names = [("step", layer.index, k) for k in range(len(chain) - 1)] + [("out", layer.index)]
        reads = [("out", i) for i in layer.inputs]
        for k, ((shape, again), tensor) in enumerate(zip(chain, names)):
            sizes[tensor] = math.prod(shape)
            steps.append((layer.index, reads + ([names[again]] if again is not None else []), tensor))
            reads = [tensor]
    last_read = {}
    for n, (_, reads, _) in enumerate(steps):
        for t in reads:
            last_read[t] = n
    last_read[("out", model.layers[-1].index)] = len(steps)  # the model's output is kept
    made = {("out", 0): -1, **{written: n for n, (_, _, written) in enumerate(steps)}}
    per_layer: dict[int, list[int]] = {}
    for n, (index, _, _) in enumerate(steps):
        alive = sum(sizes[t] for t, born in made.items() if born <= n <= last_read.get(t, born))
        per_layer.setdefault(index, []).append(alive)
    layers = tuple(LayerMemory(layer.index, math.prod(layer.output_shape), max(per_layer[layer.index]),
                               len(per_layer[layer.index])) for layer in model.layers)
    return ActivationMemory(layers, sizes[("out", 0)], *flash_estimate(model, len(sizes)))


def flash_estimate(model: Model, activations: int) -> tuple[int, int]:
    """(int8, float32) bytes of the converted model: its constant tensors (int8 weights, int32 biases and their
    per-channel scales; or all float32) and what the file holds besides, for `activations` other tensors."""
    weights = [w for layer in model.layers for w in op_of(layer).weight_tensors(layer)]
    weights += [w for layer in model.layers for p in layer.post for w in post_step(p).post_weights(p, layer)]
    overhead = FILE_BYTES + TENSOR_BYTES * (len(weights) + activations)
    int8 = sum(w.elements * (4 if w.bias else INT8) + QUANT_BYTES * w.channels for w in weights)
    return overhead + int8, overhead + sum(w.elements * FLOAT32 for w in weights)
