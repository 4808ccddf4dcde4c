"""One layer's output shape, inferred from its input shape and options; and whether `whiten` fits the layer.

    out = output_shape(op, in_shape, fields, opts, stmt, errors)          # (h, w, c) or (n,); None: an error was added
    ok = whitening_fits(opts.whiten, source, in_shape, fields, errors)    # False: an error was added

`resolve` calls both for each layer it adds: `fields` are the layer's resolved values (kernel,
stride, dilation, padding, filters, depth multiplier), `opts` its options as read, `source` the
index of the layer it reads (0: the model input). The window arithmetic is TensorFlow's
(`geometry`). A layer whose output cannot be (a window larger than its input, a stride with a
dilation, a dense layer on a feature map, ...) has no shape, and resolve checks no shapes after it.
"""
from __future__ import annotations

from . import geometry
from .errors import SpecSemanticError
from .ops import MAX_DIM, OPS
from .spec import LayerStmt, Token


def output_shape(op, in_shape, fields, opts, stmt: LayerStmt, errors: list):
    """The layer's output shape, or None after adding to `errors` why it has none."""
    def fail(message, hint, code="E230"):
        errors.append(SpecSemanticError(message, stmt.op.span, hint, code))

    spatial = len(in_shape) == 3
    if OPS[op].window or op in ("gap", "gmp"):  # flatten of a vector is allowed: it does nothing
        if not spatial:
            fail(f"{stmt.op.text} needs a feature map (HxWxC), but its input is a vector of {in_shape[0]}",
                 "put gap/flatten after the last conv or pool layer")
            return None
    if op in ("conv", "sep", "dw", "maxpool", "avgpool"):
        (kh, kw), (sh, sw), (dh, dw_) = fields["kernel"], fields["stride"], fields["dilation"]
        if max(sh, sw) > 1 and max(dh, dw_) > 1:
            fail(f"{stmt.op.text} with both a stride and a dilation above 1", "Keras supports one or the other "
                 "in a layer; split it into two layers", "E231")
            return None
        h = geometry.output_size(in_shape[0], kh, sh, dh, fields["padding"])
        w = geometry.output_size(in_shape[1], kw, sw, dw_, fields["padding"])
        if h < 1 or w < 1:
            keff = (geometry.effective_kernel(kh, dh), geometry.effective_kernel(kw, dw_))
            fail(f"{stmt.op.text} would output {h}x{w}: its {keff[0]}x{keff[1]} window is larger than its "
                 f"{in_shape[0]}x{in_shape[1]} input", "use `same` padding, a smaller kernel, or downsample less "
                 "before it", "E232")
            return None
        # filters are bounded; a depthwise step multiplies its input's channels (dw's output, sep's middle)
        depthwise = in_shape[2] * (fields.get("depth_multiplier") or 1)
        if op in ("dw", "sep") and depthwise > MAX_DIM:
            what = stmt.op.text if op == "dw" else f"{stmt.op.text}'s depthwise half"
            fail(f"{what} would output {depthwise:,} channels ({in_shape[2]:,} x dm "
                 f"{fields['depth_multiplier']:,}); a layer has at most {MAX_DIM:,}",
                 "lower `dm`, or reduce the channels before it", "E214")
            return None
        return (h, w, {"conv": opts.filters, "sep": opts.filters, "dw": depthwise}.get(op, in_shape[2]))
    if op in ("gap", "gmp"):
        return (in_shape[2],)
    if op == "flatten":
        n = 1
        for d in in_shape:
            n *= d
        return (n,)
    if op == "dense":
        if spatial:
            fail(f"dense needs a vector, but its input is a {'x'.join(map(str, in_shape))} feature map",
                 "put `gap` or `flatten` before it", "E233")
            return None
        return (opts.filters,)
    return in_shape  # dropout, bn, act, softmax


def whitening_fits(tok: Token, source: int, in_shape, fields: dict, errors: list) -> bool:
    """`whiten` sets the kernel from the images' patches: it needs the images, and one eigenvector a filter pair."""
    if source != 0:
        errors.append(SpecSemanticError("whiten needs the images: only a conv that reads the model input can be "
                                        "whitened", tok.span, "whiten the first conv instead, or drop `whiten` here",
                                        "E234"))
        return False
    (kh, kw), channels = fields["kernel"], in_shape[-1]
    most = 2 * kh * kw * channels
    if fields["filters"] % 2 or fields["filters"] > most:
        errors.append(SpecSemanticError(
            f"whiten turns the {most // 2} eigenvectors of {kh}x{kw}x{channels} patches into +/- filter pairs: "
            f"it takes an even number of filters, at most {most}, not {fields['filters']}", tok.span,
            f"write e.g. `conv {kh}x{kw} {most} ... whiten`", "E235"))
        return False
    return True
