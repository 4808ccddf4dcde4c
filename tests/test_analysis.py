"""Analysis checked against hand computations (TF SAME padding, dilation, params, MACs)."""
import pytest

import archdsl
from archdsl.analysis import check_assertions
from archdsl.errors import ArchError


def table(text):
    model = archdsl.loads(text)
    return model, archdsl.analyze(model)


def one_layer(layer, input_="32x32x3"):
    model, analysis = table(f"input {input_}\n{layer}\n")
    return model.layers[0], analysis.rows[0]


@pytest.mark.parametrize("n,k,s,out,start", [
    (32, 3, 2, 16, 1.0),   # pads 0 before, 1 after: the first unit is centred on pixel 1
    (31, 3, 2, 16, 0.0),   # odd size: pads 1 and 1, centred on pixel 0
    (32, 4, 2, 16, 0.5),   # total 2: 1 before -> centre (4-1)/2 - 1 = 0.5
    (32, 2, 2, 16, 0.5),   # total 0
    (5, 3, 3, 2, 1.0),     # total max((2-1)*3+3-5, 0) = 1 -> 0 before: centre 1
])
def test_same_padding_start(n, k, s, out, start):
    layer, row = one_layer(f"conv {k}x{k} 8 s{s} same", f"{n}x{n}x1")
    assert layer.output_shape == (out, out, 8)
    # centre of the first window = (k-1)/2 - pad_before, pad_before = total // 2
    total = max((out - 1) * s + k - n, 0)
    assert row.start == ((k - 1) / 2 - total // 2,) * 2 == (start, start)


def test_valid_stride_and_dilation_by_hand():
    model, a = table("input 32x32x1\nconv 3x3 4 valid d2\nconv 3x3 4 s3 valid\n")
    # dilation 2: effective kernel 5 -> 28x28, rf 5, start 2
    assert model.layers[0].output_shape == (28, 28, 4)
    assert (a.rows[0].rf, a.rows[0].jump, a.rows[0].start) == ((5, 5), (1, 1), (2.0, 2.0))
    # stride 3 valid on 28: (28-3)//3+1 = 9, rf 5+2 = 7, start 2+1 = 3, jump 3
    assert model.layers[1].output_shape == (9, 9, 4)
    assert (a.rows[1].rf, a.rows[1].jump, a.rows[1].start) == ((7, 7), (3, 3), (3.0, 3.0))


def test_non_square_is_per_axis():
    model, a = table("input 28x32x1\nconv 3x1 8 s2x1 same\nmaxpool 1x2\n")
    assert model.layers[0].output_shape == (14, 32, 8)
    assert a.rows[0].rf == (3, 1) and a.rows[0].jump == (2, 1)
    # H: n=28,k=3,s=2 pads total 1 -> 0 before -> start 1; W: k=1 -> start 0
    assert a.rows[0].start == (1.0, 0.0)
    assert model.layers[1].output_shape == (14, 16, 8)
    assert a.rows[1].rf == (3, 2) and a.rows[1].jump == (2, 2) and a.rows[1].start == (1.0, 0.5)


def test_params_and_macs_by_hand():
    model, a = table("input 8x8x3\nsep 3x3 16 same bn relu\nconv 3x3 4 bias\ndw 3x3 dm 2 bias\ngap\ndense 5\n")
    sep, conv, dw, gap, dense = a.rows
    assert sep.params == 3 * 9 + 3 * 16 + 4 * 16 and sep.trainable_params == 27 + 48 + 32
    assert sep.macs == 64 * (27 + 48)
    assert conv.params == 9 * 16 * 4 + 4 and conv.macs == 36 * 9 * 16 * 4
    assert model.layers[2].output_shape == (4, 4, 8)
    assert dw.params == 9 * 4 * 2 + 8 and dw.macs == 16 * 9 * 4 * 2
    assert dense.params == 8 * 5 + 5 and dense.macs == 40
    assert a.params == sum(r.params for r in a.rows)


def test_seed_models_totals_and_final_rf():
    base = archdsl.analyze(archdsl.load("specs/base.arch"))
    best = archdsl.analyze(archdsl.load("specs/best.arch"))
    assert (base.params, base.trainable_params) == (80_203, 78_891)
    assert (best.params, best.trainable_params) == (76_995, 75_407)
    assert (base.final.rf, base.final.jump) == ((34, 34), (4, 4))
    assert (best.final.rf, best.final.jump) == ((33, 33), (2, 2))
    # the seed's hand-written comments say jin=4 and nin=8x8 for the first valid layer (layer 9);
    # the true input there is 16x16 with jump 2
    assert best.model.layers[8].input_shape == (16, 16, 96) and best.rows[7].jump == (2, 2)
    assert best.rows[5].start == (1.0, 1.0) and best.rows[5].rf == (13, 13)


def test_final_rf_counts_a_conv_with_a_1x1_output():
    model, a = table("input 7x7x1\nclasses 10\nconv 3x3 4 valid\nconv 5x5 10 valid\nflatten\nsoftmax\n"
                     "assert rf >= 7\n")
    # layer 1: 5x5, rf 3, centre 1; layer 2 (5x5 valid on 5x5): 1x1, rf 3 + (5 - 1) * 1 = 7, centre 1 + 2 = 3
    assert model.layers[1].output_shape == (1, 1, 10)
    assert (a.final.index, a.final.rf, a.final.jump, a.final.start) == (2, (7, 7), (1, 1), (3.0, 3.0))
    assert [r.ok for r in check_assertions(a)] == [True]


@pytest.mark.parametrize("head,final", [
    ("avgpool 8\nflatten", (1, 3)),                # one window over the 8x8 map: a gap in disguise
    ("maxpool 8 same\nrelu\nconv 1x1 4\nflatten", (1, 3)),  # and what reads it stays global
    # layer 2, 3x3 s3 same on 8: 3x3, rf 5, jump 3 (pads 0 before: centre 1); the 2x2 pool reads 2 of its
    # 3 rows: 1x1, but a feature map of rf 5 + (2 - 1) * 3 = 8
    ("conv 3x3 4 s3 same\nmaxpool 2x2\nflatten", (3, 8)),
])
def test_final_rf_skips_only_pools_over_the_whole_map(head, final):
    _, a = table(f"input 8x8x1\nconv 3x3 4 same\n{head}\n")
    assert (a.final.index, a.final.rf[0]) == final


def test_load_takes_a_path_object():
    from pathlib import Path

    model = archdsl.load(Path("specs/best.arch"))
    assert model == archdsl.load("specs/best.arch") and model.layers[0].where.file == "specs/best.arch"


def test_warning_when_rf_already_covers_input():
    _, a = table("input 8x8x1\nconv 3x3 4 valid\nconv 3x3 4 valid\nconv 3x3 4 valid\nconv 3x3 4 same\n")
    # rf after three valid 3x3: 7 < 8; after the fourth 9 >= 8 but the warning is for layers whose
    # *input* already covers the image: none here
    assert a.warnings == []
    # layer 3's input (rf 5) is above 4, but its unit 0 sees [-2, 2] and misses pixel 3: layer 3 adds context
    _, a = table("input 4x4x1\nconv 3x3 4 same\nconv 3x3 4 same\nconv 3x3 4 same\n")
    assert a.warnings == []
    # layer 4's input (rf 7): unit 0 sees [-3, 3], unit 3 [0, 6], both the whole [0, 3]
    _, a = table("input 4x4x1\nconv 3x3 4 same\nconv 3x3 4 same\nconv 3x3 4 same\nconv 3x3 4 same\n")
    assert [(w.code, w.layers) for w in a.warnings] == [("W301", (4,))] and "layer 4" in str(a.warnings[0])


def test_repeat_and_block_expand():
    model, _ = table("input 32x32x3\nblock b(c, s=1) {\n  conv 3x3 c stride s same\n}\n2 * b(8)\nb(16, s=2)\n")
    assert [l.output_shape for l in model.layers] == [(32, 32, 8), (32, 32, 8), (16, 16, 16)]
    assert model.layers[2].block == "b(16,2)#3"


def test_graph_ir_is_a_chain_for_a_stack():
    model, _ = table("input 8x8x1\nconv 3x3 4 same\nconv 3x3 4 same\n")
    assert [l.inputs for l in model.layers] == [(0,), (1,)]


@pytest.mark.parametrize("text,needle", [
    ("input 2x2x1\nconv 3x3 4 valid\n", "would output 0x0"),
    ("input 8x8x1\ngap\nconv 3x3 4\n", "needs a feature map"),
    ("input 8x8x1\nconv 3x3 4 s2 d2\n", "both a stride and a dilation"),
])
def test_shape_errors(text, needle):
    with pytest.raises(ArchError) as exc:
        archdsl.loads(text)
    assert needle in exc.value.render()


def test_explicit_padding_and_groups_by_hand():
    model = archdsl.loads("input 10x10x8\nconv 3x3 16 s2 pad 1,0 groups 4\nmaxpool 3x3 s2 pad 0,0,1,0\n")
    conv, pool = archdsl.analyze(model).rows
    # conv: rows (10 + 1 + 1 - 3) // 2 + 1 = 5, columns (10 - 3) // 2 + 1 = 4; a filter reads 8 / 4 channels
    assert model.layers[0].output_shape == (5, 4, 16)
    assert (conv.params, conv.macs) == (3 * 3 * 2 * 16, 5 * 4 * 3 * 3 * 2 * 16)
    # the first window is centred on pixel (1 - 1) = 0 of the rows, (1 - 0) = 1 of the columns
    assert (conv.rf, conv.jump, conv.start) == ((3, 3), (2, 2), (0, 1))
    # pool on 5x4, one zero column on the left: rows (5 - 3) // 2 + 1 = 2, columns (4 + 1 - 3) // 2 + 1 = 2
    assert model.layers[1].output_shape == (2, 2, 16)
    # rf 3 + 2 * 2 = 7, jump 4; centre rows 0 + (1 - 0) * 2 = 2, columns 1 + (1 - 1) * 2 = 1
    assert (pool.rf, pool.jump, pool.start) == ((7, 7), (4, 4), (2, 1))


def test_bn_noscale_nocenter_params_by_hand():
    """Keras' count: gamma only with scale, beta only with center, the moving mean and variance always
    (non-trainable). TF-slim's Inception writes `bn noscale` after every conv."""
    model, a = table("input 8x8x3\nconv 3x3 8 same bn noscale relu\nbn nocenter\nbn noscale nocenter\nbn\n"
                     "conv 1x1 4 bn nocenter bn noscale\n")
    conv, nocenter, neither, both, twice = a.rows
    # conv 3*3*3*8 = 216 weights; its bn: beta 8 + moving mean 8 + variance 8 = 24 -> 240, of which 216 + 8 = 224 train
    assert (conv.params, conv.trainable_params) == (240, 224)
    assert (nocenter.params, nocenter.trainable_params) == (24, 8)    # gamma 8, mean 8, variance 8
    assert (neither.params, neither.trainable_params) == (16, 0)      # only the statistics
    assert (both.params, both.trainable_params) == (32, 16)           # Keras' default: all four
    # 1x1 conv 8*4 = 32; gamma 4 + statistics 8; beta 4 + statistics 8 -> 32 + 12 + 12 = 56, 32 + 4 + 4 = 40 train
    assert (twice.params, twice.trainable_params) == (56, 40)
    layers = model.layers
    assert [(p.scale, p.center) for p in layers[0].post if p.kind == "bn"] == [(False, True)]
    assert [(l.scale, l.center) for l in layers[1:4]] == [(True, False), (False, False), (True, True)]
    assert [(p.scale, p.center) for p in layers[4].post] == [(True, False), (False, True)]
