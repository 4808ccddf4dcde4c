"""What building or measuring a model would allocate, estimated from the IR before TensorFlow does it.

A spec can describe a model no machine holds (`conv 3x3 100000` a few times over: 6.4e12 weights),
and `rf --verify` on a 100000x100000 input measures maps of 10^10 pixels. TensorFlow would fail
with an out-of-memory traceback after swapping for a while; these checks refuse first, pointing
at the layer responsible, with the estimate and this machine's memory.

- Building: every weight is a float32 variable, and Keras' initializer makes a temporary of the
  same size while it sets it: 2 x 4 bytes a weight.
- Measuring (`rf --verify`): verify's twin keeps, for at least one unit a pass, a float64 map and
  its gradient per measured layer on the enlarged canvas: 16 bytes x canvas pixels x layers.
"""
from __future__ import annotations

import os

from ..errors import SpecSemanticError, Span
from ..ir import Layer, Model
from ..analysis import layer_params

BYTES_A_WEIGHT = 2 * 4
USABLE = 0.8   # of the machine's physical memory: the rest is the interpreter, TensorFlow and the OS


def physical_memory() -> int | None:
    """This machine's RAM in bytes, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def check_build(model: Model, limit: int | None = None) -> None:
    """Refuse a model whose weights alone would not fit in memory."""
    limit = limit if limit is not None else _usable()
    if limit is None:
        return
    params = {layer.index: layer_params(layer)[0] for layer in model.layers}
    need = BYTES_A_WEIGHT * sum(params.values())
    if need <= limit:
        return
    biggest = model.layer(max(params, key=params.get))
    raise SpecSemanticError(
        f"building the model would allocate about {_bytes(need)} for its {sum(params.values()):,} weights "
        f"(layer {biggest.index} alone has {params[biggest.index]:,}); this machine has {_bytes(limit)} to give",
        _span(biggest), "make the widest layers narrower (fewer filters or units), or the input smaller", "E236")


def check_measurement(model: Model, canvas: tuple[int, int], layers: int, limit: int | None = None) -> None:
    """Refuse an `rf --verify` whose smallest pass (one unit) would not fit in memory."""
    limit = limit if limit is not None else _usable()
    if limit is None:
        return
    need = 16 * canvas[0] * canvas[1] * layers
    if need <= limit:
        return
    first = model.layers[0]
    raise SpecSemanticError(
        f"rf --verify would measure {layers} layer{'s' if layers != 1 else ''} on a {canvas[0]:,}x{canvas[1]:,} canvas (the input and the "
        f"margin its receptive fields reach past it): about {_bytes(need)} a pass, and this machine has "
        f"{_bytes(limit)} to give", _span(first),
        "verify a copy of the spec with a smaller `input` (the receptive fields do not depend on it while they fit)",
        "E236")


def _usable() -> int | None:
    memory = physical_memory()
    return int(memory * USABLE) if memory else None


def _span(layer: Layer) -> Span:
    return Span(layer.where.file, layer.where.line, layer.where.column, layer.where.column + len(layer.text.split()[0]))


def _bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} bytes"
