"""Residual and parallel blocks: IR edges, merge shapes, RF over every path, Keras equality."""
import json

import numpy as np
import pytest

import archdsl
from archdsl.errors import ArchError
from archdsl.render.tables import to_dict

RESIDUAL = """input 32x32x3
conv 3x3 16 same bn relu
residual {
  conv 3x3 32 s2 same bn relu
  conv 3x3 32 same bn
} shortcut {
  conv 1x1 32 s2 same
}
relu
"""


def test_residual_edges_and_union_rf_by_hand():
    model = archdsl.loads(RESIDUAL)
    a = archdsl.analyze(model)
    ops = [(l.op, l.inputs) for l in model.layers]
    assert ops == [("conv", (0,)), ("conv", (1,)), ("conv", (2,)), ("conv", (1,)), ("add", (3, 4)), ("act", (5,))]
    # body: rf 3 -> 5 (jump 2, TF pads 0 before: centre 1) -> 9, centre 1: interval [-3, 5]
    # shortcut: 1x1 s2 on layer 1 (rf 3, centre 0): interval [-1, 1]
    # union [-3, 5]: rf 9, centre 1
    assert a.rows[4].rf == (9, 9) and a.rows[4].start == (1.0, 1.0) and a.rows[4].jump == (2, 2)
    assert a.rows[3].rf == (3, 3) and a.rows[3].start == (0.0, 0.0)
    assert len(a.warnings) == 1 and "centred on different pixels (layer 3 at 1, layer 4 at 0)" in a.warnings[0].message
    # the cause is named: layer 2 on the 32x32 map pads total (16 - 1) * 2 + 3 - 32 = 1, the smaller half before
    assert a.warnings[0].message.endswith(": layer 2 (conv 3x3 32 s2 same bn relu) has stride 2 on size 32, which TF's "
                                  "SAME padding pads 0 before and 1 after")


def test_union_when_shortcut_reaches_further():
    # the shortcut's 7x7 window reaches further than the body's 3x3: the union is the shortcut's
    model = archdsl.loads("input 16x16x1\nresidual {\n  conv 3x3 4 same\n} shortcut {\n  conv 7x7 4 same\n}\n")
    a = archdsl.analyze(model)
    assert a.rows[-1].rf == (7, 7) and a.rows[-1].start == (0.0, 0.0)


def test_parallel_concat_channels_and_identity_branch():
    model = archdsl.loads("input 8x8x4\nparallel concat {\n  branch {\n    conv 1x1 8 same\n  }\n"
                          "  branch {\n  }\n}\n")
    assert model.layers[-1].output_shape == (8, 8, 12) and model.layers[-1].inputs == (1, 0)


@pytest.mark.parametrize("text,needle", [
    ("input 32x32x3\nresidual {\n  conv 3x3 8 s2 same\n}\n",
     "add needs equal shapes, but the body gives 16x16x8 and the shortcut gives 32x32x3"),
    ("input 32x32x3\nparallel concat {\n  branch {\n    conv 3x3 8 s2 same\n  }\n  branch {\n    conv 1x1 8 same\n"
     "  }\n}\n", "concat needs equal spatial sizes, but branch 1 gives 16x16x8 and branch 2 gives 32x32x8"),
    ("input 32x32x3\nparallel add {\n  branch {\n    conv 1x1 8 same\n  }\n}\n", "at least two branches"),
    ("input 17x17x3\nparallel add {\n  branch {\n    conv 3x3 8 s2 same\n  }\n  branch {\n    conv 9x9 8 valid\n"
     "  }\n}\n", "step through the image differently (layer 1 jump 2, layer 2 jump 1)"),
    ("input 8x8x3\nparallel mul {\n  branch {\n  }\n  branch {\n  }\n}\n", "unknown merge 'mul'"),
])
def test_bad_merges_are_positioned(text, needle):
    with pytest.raises(ArchError) as exc:
        archdsl.analyze(archdsl.loads(text))
    rendered = exc.value.render(text)
    assert needle in rendered
    assert "<spec>:2:" in rendered and "^" in rendered


def test_unequal_jumps_underline_the_keyword_like_unequal_shapes():
    # E264 (found by the analysis) underlines the count and keyword, as E263 (found by the resolver) does
    text = "input 3x3x8\n2 * residual {\n  conv 1x1 8 s2 same\n} shortcut {\n  conv 2x2 8 valid\n}\n"
    with pytest.raises(ArchError) as exc:
        archdsl.analyze(archdsl.loads(text))
    rendered = exc.value.render(text)
    assert "error[E264]" in rendered
    assert "  2 | 2 * residual {\n    | ^^^^^^^^^^^^\n" in rendered


POOLING_HEAD = """input 32x32x3
classes 10
conv 3x3 16 same bn relu
parallel concat {
  branch {
    gap
  }
  branch {
    conv 3x3 16 s2 same bn relu
    gap
  }
}
dense classes
softmax
"""


def test_concat_of_pooled_vectors_needs_no_equal_jumps():
    # a multi-scale pooling head: the branches pool maps of jump 1 and 2 into (16,) vectors, which
    # Keras concatenates; only feature maps must line up
    model = archdsl.loads(POOLING_HEAD)
    a = archdsl.analyze(model)
    assert model.layers[4].op == "concat" and model.layers[4].output_shape == (32,)
    assert model.layers[4].inputs == (2, 4) and not a.warnings
    # layer 1: rf 3, centre 0; its gap reads 32 units of jump 1: rf 3 + 31 = 34, centre 15.5, interval [-1, 32]
    # layer 3 (3x3 s2 same on 32, pad 0 before): rf 5, jump 2, centre 1; its gap reads 16 units:
    # rf 5 + 15 * 2 = 35, centre 1 + 7.5 * 2 = 16, interval [-1, 33]
    assert (a.rows[1].rf, a.rows[1].start) == ((34, 34), (15.5, 15.5))
    assert (a.rows[3].rf, a.rows[3].jump, a.rows[3].start) == ((35, 35), (2, 2), (16.0, 16.0))
    # the concat, a vector like gap's output (shown `global`), sees the union [-1, 33]
    assert (a.rows[4].rf, a.rows[4].start) == ((35, 35), (16.0, 16.0))
    # the final receptive field is the deepest feature map's, the last before a gap
    assert (a.final.index, a.final.rf, a.final.jump) == (3, (5, 5), (2, 2))


@pytest.mark.tf
def test_concat_of_pooled_vectors_builds_in_keras():
    from archdsl.keras_backend.compile import compile as compile_keras

    model = archdsl.loads(POOLING_HEAD)
    built = compile_keras(model)
    assert tuple(built.get_layer(model.layers[4].name).output.shape) == (None, 32)
    assert tuple(built.output.shape) == (None, 10)
    assert built.count_params() == archdsl.analyze(model).params


@pytest.mark.parametrize("text,warning", [
    # no stride: 2x2 `same` on 8 pads (8 - 1) + 2 - 8 = 1, 0 before: centre (2 - 1) / 2 - 0 = 0.5
    ("input 8x8x3\nparallel concat {\n  branch {\n    conv 2x2 4 same\n  }\n  branch {\n  }\n}\n",
     "(layer 1 at 0.5, the input at 0): layer 1 (conv 2x2 4 same) has an even kernel, whose centre falls between "
     "two pixels"),
    # layer 1's even kernel shifts both paths alike (centre 0.5): only layer 2's stride parts them (1.5 and 0.5)
    ("input 8x8x3\nconv 2x2 4 same\nparallel concat {\n  branch {\n    conv 3x3 4 s2 same\n  }\n  branch {\n"
     "    conv 1x1 4 s2 same\n  }\n}\n",
     "(layer 2 at 1.5, layer 3 at 0.5): layer 2 (conv 3x3 4 s2 same) has stride 2 on size 8, which TF's SAME "
     "padding pads 0 before and 1 after"),
])
def test_misalignment_warning_names_the_layer_that_shifts_a_path(text, warning):
    a = archdsl.analyze(archdsl.loads(text))
    assert len(a.warnings) == 1 and a.warnings[0].message.endswith(warning)


@pytest.mark.parametrize("size,body,shortcut,aligned", [
    # 9 -> 5 -> 3 (jump 4): s3 would give 3 too, but jump 3; s4 gives ceil(9 / 4) = 3 and jump 4
    ("9x9", "conv 3x3 8 s2 same\n  conv 3x3 8 s2 same", "conv 1x1 8 s4 same", True),
    # 7 -> (7 - 3) // 2 + 1 = 3 (jump 2, centre 1): a 1x1 s2 gives 4; `valid` k gives 3 for k = 2 or 3, and the 3x3
    # is centred like the body (at 1, not 0.5)
    ("7x7", "conv 3x3 8 s2 valid", "conv 3x3 8 s2 valid", True),
    # ResNet's projection: the body's stride-2 SAME window on an even size is centred at 1, the 1x1's at 0
    ("32x32", "conv 3x3 8 s2 same\n  conv 3x3 8 same", "conv 1x1 8 s2 same", False),
    ("8x6", "conv 3x3 8 s2x1 same", "conv 1x1 8 s2x1 same", False),
    ("8x8", "conv 3x3 8 valid\n  conv 3x3 8 valid", "conv 5x5 8 valid", True),  # 8 -> 4, jump 1: only a 5x5 lands
])
def test_shortcut_hint_lands_on_the_body_size_and_jump(size, body, shortcut, aligned):
    text = f"input {size}x3\nresidual {{\n  {body}\n}}\n"
    with pytest.raises(ArchError) as exc:
        archdsl.loads(text)
    assert f"then `{shortcut}`, then" in exc.value.render(text)
    # written as the hint says, it merges: equal shapes (no E263) and jumps (no E264)
    a = archdsl.analyze(archdsl.loads(text[:-1] + f" shortcut {{\n  {shortcut}\n}}\n"))
    assert (a.warnings == []) == aligned


def test_json_has_edges():
    model = archdsl.loads(RESIDUAL)
    data = json.loads(json.dumps(to_dict(archdsl.analyze(model), [])))
    assert [2, 3] in data["edges"] and [3, 5] in data["edges"] and [4, 5] in data["edges"]


@pytest.mark.tf
def test_resnet8_equals_mlperf_reference_keras_model():
    """examples/resnet8.arch vs MLPerf Tiny's ResNet-8 written as in its reference keras_model.py."""
    import keras
    from keras import layers as L

    from archdsl.keras_backend.compile import compile as compile_keras

    created = []  # weighted layers in the order the reference code creates them

    def track(layer):
        created.append(layer)
        return layer

    Conv2D = lambda *a, **k: track(L.Conv2D(*a, **k))  # noqa: E731
    BatchNormalization = lambda: track(L.BatchNormalization())  # noqa: E731
    Dense = lambda *a, **k: track(L.Dense(*a, **k))  # noqa: E731

    def conv(x, filters, kernel, strides=1):
        return Conv2D(filters, kernel, strides=strides, padding="same")(x)

    inputs = keras.Input((32, 32, 3))
    x = conv(inputs, 16, 3)
    x = L.Activation("relu")(BatchNormalization()(x))
    y = conv(x, 16, 3)
    y = L.Activation("relu")(BatchNormalization()(y))
    y = conv(y, 16, 3)
    y = BatchNormalization()(y)
    x = L.Activation("relu")(L.add([x, y]))
    for filters in (32, 64):
        y = conv(x, filters, 3, strides=2)
        y = L.Activation("relu")(BatchNormalization()(y))
        y = conv(y, filters, 3)
        y = BatchNormalization()(y)
        x = conv(x, filters, 1, strides=2)
        x = L.Activation("relu")(L.add([x, y]))
    x = L.Flatten()(L.AveragePooling2D(pool_size=8)(x))
    reference = keras.Model(inputs, Dense(10, activation="softmax")(x))

    ours = compile_keras(archdsl.load("examples/resnet8.arch"))
    assert ours.count_params() == reference.count_params() == 78_666
    # same weights in, same outputs out: our layer names (l07_conv32, l07_conv32_bn, ...) sort in spec
    # order, which is the reference's order of creation
    ref_weighted = created
    our_weighted = sorted((l for l in ours.layers if l.weights), key=lambda l: l.name)
    assert [type(l).__name__ for l in ref_weighted] == [type(l).__name__ for l in our_weighted]
    for src, dst in zip(ref_weighted, our_weighted):
        dst.set_weights(src.get_weights())
    batch = np.random.default_rng(0).uniform(0, 1, (4, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(ours(batch, training=False), reference(batch, training=False), atol=1e-6)
