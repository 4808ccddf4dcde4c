"""Receptive fields measured on the built Keras model (archdsl.keras_backend.verify) against the analysis.

The measurement is exact (positive linear twin, gradient > 0 exactly on the pixels a unit
sees), so every comparison here is equality. Tests that build a model are marked `tf`.
"""
import dataclasses
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.errors import ArchError
from spec_files import load_spec, spec_paths

ROOT = Path(__file__).resolve().parent.parent




def verify(model, analysis=None):
    from archdsl.keras_backend.verify import verify_rf
    return verify_rf(model, analysis)


# --- hand computations ------------------------------------------------------------------------

def test_hand_computations_of_the_seed_specs():
    best = archdsl.analyze(archdsl.load("specs/best.arch"))
    # five 3x3 (rf 11), one 3x3 stride 2 (13, jump 2), two more (17, 21), three valid (25, 29, 33)
    assert (best.final.rf, best.final.jump) == ((33, 33), (2, 2))
    assert (best.metric("rf"), best.metric("jump")) == (33, 2)
    # n=32, k=3, s=2, SAME: out 16, total pad (16-1)*2+3-32 = 1, 0 before and 1 after, so the
    # first window covers pixels 0..2 of the 11-rf map: centre 1
    assert best.rows[5].index == 6
    assert (best.rows[5].rf, best.rows[5].jump, best.rows[5].start) == ((13, 13), (2, 2), (1.0, 1.0))
    base = archdsl.analyze(archdsl.load("specs/base.arch"))
    # 3 x 3x3 (7), pool 2 (8, jump 2), 2 x 3x3 (12, 16), pool 2 (18, jump 4), 2 x valid 3x3 (26, 34)
    assert (base.final.rf, base.final.jump) == ((34, 34), (4, 4))
    assert [r.rf[0] for r in base.rows[:9]] == [3, 5, 7, 8, 12, 16, 18, 26, 34]


@pytest.mark.tf
def test_verify_confirms_the_hand_computations():
    from archdsl.keras_backend.verify import measure_rf

    best = archdsl.load("specs/best.arch")
    report = verify(best)
    assert report.ok, report.render()
    six = next(r for r in report.rows if r.index == 6)
    assert (six.measured_rf, six.measured_jump, six.measured_start) == ((13, 13), (2, 2), (1, 1))
    last = report.rows[-1]
    assert (last.index, last.measured_rf, last.measured_jump) == (11, (33, 33), (2, 2))
    # the raw footprints of layer 6: unit 0 sees -5..7 (pixels -5..-1 are padding), unit 15
    # is centred on 1 + 15*2 = 31 and sees 25..37, of which the image has 25..31
    m = measure_rf(best)[6]
    assert m.canvas[(0, 0)] == ((-5, 7), (-5, 7)) and m.image[(0, 0)] == ((0, 7), (0, 7))
    assert m.canvas[(15, 15)] == ((25, 37), (25, 37)) and m.image[(15, 15)] == ((25, 31), (25, 31))
    assert m.canvas[(8, 8)] == m.image[(8, 8)] == ((11, 23), (11, 23))

    base = verify(archdsl.load("specs/base.arch"))
    assert base.ok, base.render()
    assert (base.rows[-1].measured_rf, base.rows[-1].measured_jump) == ((34, 34), (4, 4))


# --- agreement ----------------------------------------------------------------------------------

@pytest.mark.tf
@pytest.mark.parametrize("path", spec_paths())
def test_verify_agrees_on_every_spec(path):
    model = load_spec(path)
    report = verify(model)
    assert report.ok, report.render()
    measured = [layer for layer in model.layers if layer.spatial and layer.op not in ("gap", "gmp", "flatten")]
    assert [r.index for r in report.rows] == [layer.index for layer in measured]
    assert report.render().splitlines()[-1] == f"verified {len(measured)} layers: all agree"


def _s2_same(n, k):
    return f"input {n}x{n}x2\nconv {k}x{k} 4 s2 same\nconv {k}x{k} 4 s2 same relu\nconv 3x3 4 same\n"


TRICKY = {
    **{f"stride 2 same, n={n}, k={k}": _s2_same(n, k) for n in (32, 31) for k in (3, 4, 2)},
    "valid stride 3": "input 31x32x2\nconv 3x3 4 s3 valid\nconv 4x4 4 s3 valid\nconv 2x2 4 valid\n",
    "dilation 2 and 3": "input 32x32x1\nconv 3x3 4 same d2\nconv 3x3 4 same d3\nconv 3x3 4 valid dilation 2\n"
                        "sep 2x2 4 same d3\ndw 2x2 same d2\n",
    "even kernels dilated, per axis": "input 20x21x1\nconv 2x2 4 same d3\nconv 3x3 4 same\n"
                                      "conv 4x2 4 same dilation 2x3\n",
    "non-square kernels and input": "input 28x32x1\nconv 3x1 4 same\nconv 1x5 4 same\nconv 3x1 4 s2 same\n"
                                    "sep 1x5 8 s1x2 valid\nconv 5x3 4 s2x1 same\nflatten\ndense 10\nsoftmax\n",
    "pools with same padding": "input 31x30x3\nmaxpool 3x3 s2 same\navgpool 2x2 same\nmaxpool 3x3 s1 same\n"
                               "avgpool 3x3 s2 same\nmaxpool 2x2 s3 same\ngap\ndense 5 bias\n",
    "dw with dm 2, dense head": "input 17x17x3\ndw 3x3 dm 2 same bn relu\ndw 3x3 s2 dm 2 same\nconv 1x1 8 same\n"
                                "dw 5x5 valid drop .1\ngap\ndense 10 relu\ndense 3\nsoftmax\n",
    "stride larger than the kernel": "input 32x32x1\nconv 1x1 4 s2 same\nconv 3x3 4 same\nmaxpool 2x2 s3\n"
                                     "conv 3x3 4 same\n",
    "rf far wider than the image": "input 8x8x1\n6 * conv 3x3 2 same\nconv 3x3 2 s2 same\n3 * conv 3x3 2 same\n",
    "valid truncation then same": "input 14x5x1\navgpool 3x2 valid\navgpool 2x2 same\nmaxpool 4x3 same\n",
    "windows of padding only": "input 20x15x1\navgpool 2x1 same\navgpool 4x2 valid\nsep 2x4 2 same d3x2\n",
    "1x1 output": "input 5x5x1\nconv 5x5 2 valid\nconv 1x1 2 same\n",
    "parallel and residual": """input 31x30x2
conv 3x3 4 same
parallel concat {
  branch {
    conv 3x3 4 same d2
  }
  branch {
    maxpool 3x3 s1 same
    conv 1x5 4 same
  }
}
residual {
  conv 3x3 8 s2 same relu
  conv 2x2 8 same
} shortcut {
  conv 1x1 8 s2 same
}
relu
gap
dense 3
""",
}


@pytest.mark.tf
@pytest.mark.parametrize("name", TRICKY)
def test_verify_agrees_on_tricky_models(name):
    report = verify(archdsl.loads(TRICKY[name], name))
    assert report.ok, report.render()


@pytest.mark.tf
def test_clipping_alone_is_not_exact():
    """Why verify also measures on a canvas: an even dilated kernel's outer taps fall on padding,
    so unit (0,0) sees only pixel 2 of the image, though its RF is -1..2 (clip: 0..2)."""
    from archdsl.keras_backend.verify import measure_rf

    model = archdsl.loads("input 20x21x1\nconv 2x2 4 same d3\n")
    row = archdsl.analyze(model).rows[0]
    assert (row.rf, row.start) == ((4, 4), (0.5, 0.5))
    m = measure_rf(model)[1]
    assert m.image[(0, 0)] == ((2, 2), (2, 2))
    assert m.canvas[(0, 0)] == ((-1, 2), (-1, 2))
    assert verify(model).ok


@pytest.mark.tf
def test_several_passes_measure_what_one_pass_does(monkeypatch):
    """A large input is measured a few units a pass (the last pass padded with repeats)."""
    from archdsl.keras_backend import verify as module

    model = archdsl.loads(TRICKY["parallel and residual"])
    one_pass = module.measure_rf(model)
    # 3 units a pass: the measured units (four a layer) do not fill the last pass
    monkeypatch.setattr(module, "_items_per_pass", lambda pixels, layers: 3)
    assert sum(len(m.image) for m in one_pass.values()) % 3 != 0
    assert module.measure_rf(model) == one_pass


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(3, 20), st.integers(3, 20), st.lists(st.tuples(
    st.sampled_from(["conv", "sep", "dw", "maxpool", "avgpool"]),
    st.tuples(st.integers(1, 4), st.integers(1, 4)),
    st.sampled_from(["same", "valid"]),
    st.sampled_from(["", "stride", "dilation"]),
    st.tuples(st.integers(1, 3), st.integers(1, 3))), min_size=1, max_size=5))
@pytest.mark.tf
def test_verify_agrees_on_random_chains(h, w, layers):
    lines = [f"input {h}x{w}x1"]
    for op, (kh, kw), padding, option, (a, b) in layers:
        if option == "dilation" and op in ("maxpool", "avgpool"):
            option = ""
        extra = {"": "", "stride": f"s{a}x{b}", "dilation": f"d{a}x{b}"}[option]
        lines.append(f"{op} {kh}x{kw}{' 2' if op in ('conv', 'sep') else ''} {padding} {extra}")
    try:
        model = archdsl.loads("\n".join(lines) + "\n")
    except ArchError:
        assume(False)  # a window larger than its input: not a model
    report = verify(model)
    assert report.ok, "\n".join(lines) + "\n" + report.render()


# --- it can fail ----------------------------------------------------------------------------------

def _altered(analysis, index, **changes):
    rows = [dataclasses.replace(r, **changes) if r.index == index else r for r in analysis.rows]
    return dataclasses.replace(analysis, rows=rows)


@pytest.mark.tf
@pytest.mark.parametrize("spec,index,change", [
    ("specs/best.arch", 6, dict(start=(0.0, 1.0))),           # the SAME pad put before (a classic)
    ("specs/best.arch", 6, dict(start=(1.0, 1.5))),           # half a pixel, one axis
    ("specs/best.arch", 9, dict(rf=(27, 27))),
    ("specs/best.arch", 11, dict(rf=(33, 35))),
    ("specs/base.arch", 8, dict(jump=(8, 4))),
    ("specs/base.arch", 4, dict(start=(1.5, 1.5), rf=(6, 6))),  # unit 0 keeps its right edge
    # every unit's RF covers the whole 8x8 image: the clipped view cannot tell, the canvas can
    ("rf far wider than the image", 9, dict(rf=(29, 27))),
])
def test_verify_reports_a_wrong_analysis(spec, index, change):
    model = archdsl.load(spec) if spec.endswith(".arch") else archdsl.loads(TRICKY[spec], spec)
    analysis = archdsl.analyze(model)
    report = verify(model, _altered(analysis, index, **change))
    assert not report.ok
    assert [r.index for r in report.rows if not r.ok] == [index]
    bad = next(r for r in report.rows if r.index == index)
    assert bad.problems and all("analysis says" in p for p in bad.problems)
    if not spec.endswith(".arch"):
        assert not any(p.startswith("on the") for p in bad.problems)  # the clipped view agrees
    lines = report.render().splitlines()
    assert any(line.startswith(bad.name) and "MISMATCH: " in line for line in lines)
    assert lines[-1] == f"verified {len(report.rows)} layers: 1 of {len(report.rows)} disagree"


@pytest.mark.tf
def test_verify_measures_the_built_model(monkeypatch):
    """A back-end that forgets a dilation keeps every shape (SAME) but not the receptive field."""
    from archdsl.ops import OPS

    conv = OPS["conv"]
    main_layer = conv.keras_layer

    def without_dilation(layer, *args, **kwargs):
        return main_layer(layer.model_copy(update={"dilation": (1, 1)}), *args, **kwargs)

    monkeypatch.setattr(conv, "keras_layer", without_dilation)
    model = archdsl.loads("input 16x16x1\nconv 3x3 2 same\nconv 3x3 2 same d2\nconv 3x3 2 same\n")
    report = verify(model)
    assert [r.index for r in report.rows if not r.ok] == [2, 3]
    assert report.rows[1].measured_rf == (5, 5) and report.rows[1].rf == (7, 7)


# --- the report ------------------------------------------------------------------------------------

@pytest.mark.tf
def test_render_is_a_readable_table():
    report = verify(archdsl.load("specs/base.arch"))
    lines = report.render().splitlines()
    assert lines[0].split() == ["layer", "output", "analytic", "rf", "/", "jump", "/", "start",
                                "measured", "rf", "/", "jump", "/", "start"]
    assert lines[4].split() == ["l04_maxpool", "16x16x96", "8x8", "/", "2x2", "/", "0.5,0.5",
                                "8x8", "/", "2x2", "/", "0.5,0.5", "ok"]
    assert lines[-1] == "verified 9 layers: all agree"
    assert len({line.index("ok") for line in lines[1:-1]}) == 1  # the verdicts are aligned


@pytest.mark.tf
def test_a_model_without_feature_maps_has_nothing_to_verify():
    report = verify(archdsl.loads("input 4x4x3\nflatten\ndense 2\n"))
    assert report.ok and report.rows == []
    assert report.render().splitlines()[-1] == "verified 0 layers: all agree"
