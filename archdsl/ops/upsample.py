"""`upsample 2x [nearest|bilinear]`: each feature map made `factor` times larger (U-Net's decoder, FPN's top-down
path). The first op whose units step by less than a pixel: after `upsample 2x` of a jump-1 map the jump is 1/2,
and the fields repeat every two units (nearest: units 0 and 1 both see pixel 0; see `geometry.upsample`)."""
from __future__ import annotations

from . import geometry
from .base import MAX_DIM, MODULE_CALL, Op, OpSignature, needs_feature_map, register


@register
class Upsample(Op):
    name = "upsample"
    spellings = ("upsample",)
    doc = "upsampling by a whole factor: `upsample 2x` (or `2x1` per axis), `nearest` (default) or `bilinear`"
    sample = "upsample 2x\nconv 3x3 4 same\nupsample 2x1 bilinear\nconv 2x2 3 s2 same"
    signature = OpSignature(factor=True)
    keras_class = "UpSampling2D"
    draw_kind = "pool"
    example = "upsample 2x"

    def resolve_fields(self, opts, written):
        return {"factor": opts.factor or (2, 2), "interpolation": opts.interpolation or "nearest"}

    def output_shape(self, in_shape, fields, written, fail):
        if not needs_feature_map(in_shape, written, fail):
            return None
        h, w = (n * f for n, f in zip(in_shape[:2], fields["factor"]))
        if max(h, w) > MAX_DIM:
            fail(f"{written} would output {h:,}x{w:,}; a map has at most {MAX_DIM:,} pixels a side",
                 "upsample by less, or downsample more before it", "E214")
            return None
        return h, w, in_shape[2]

    def geometry(self, layer, inputs):
        (axes,) = inputs
        return tuple(geometry.upsample(axes[a], layer.factor[a], layer.interpolation) for a in (0, 1))

    def canvas_reach(self, layer, axis) -> int:
        # a unit left of the edge is a whole input unit left of it (nearest: unit -1 is input unit -1, not -1/2);
        # bilinear mixes in a neighbour, one more
        return 2 if layer.interpolation == "bilinear" else 1

    def step_shapes(self, layer):
        """Nearest: Keras repeats rows, then columns, each a reshape, a tile and a reshape (as TFLite runs it);
        bilinear is one resize."""
        if layer.interpolation != "nearest":
            return ()
        (h, w, c), (fh, fw) = layer.input_shape, layer.factor
        steps = [(h, 1, w, c), (h, fh, w, c), (h * fh, w, c)] if fh > 1 else []
        if fw > 1:
            return (*steps, (h * fh, w, 1, c), (h * fh, w, fw, c))
        return tuple(steps[:-1])  # the rows' last reshape is the output

    def keras_layer(self, layer, L, bn_class, **window):
        return L.UpSampling2D(size=layer.factor, interpolation=layer.interpolation, name=layer.name)

    def twin(self, keras_layer, layer, kit):
        return kit.copy(keras_layer)  # already linear and positive

    keras_source = ("{{ v.var|ident }} = layers.UpSampling2D(size={{ l.factor|py }}, "
                    "interpolation={{ l.interpolation|py }}, name={{ l.name|py }})({{ v.src }})")
    # TF's bilinear resize samples at half-pixel centres, as torch's align_corners=False
    torch_init = ("self.{{ v.attr|ident }} = nn.Upsample(scale_factor={{ l.factor|float_pair }}, "
                  "mode={{ l.interpolation|py }}{% if l.interpolation == 'bilinear' %}, align_corners=False"
                  "{% endif %})")
    torch_forward = MODULE_CALL
