"""`upsample`: units that step by less than a pixel, and fields that differ between neighbours.

Expected values are worked out by hand below (nearest: output unit j is input unit j // f; bilinear,
half-pixel centres: unit j sits at x = (j + 0.5) / f - 0.5 and mixes floor(x) and floor(x) + 1), and
checked against Keras itself: every unit `rf --verify` measures sees exactly the pixels the analysis says.
"""
from __future__ import annotations

import json

import pytest

import archdsl
from archdsl.cli import main


def test_nearest_then_conv_by_hand():
    model = archdsl.loads("input 8x8x1\nupsample 2x\nconv 3x3 1 same\n")
    up, conv = archdsl.analyze(model).rows
    assert model.layers[0].output_shape == (16, 16, 1)
    # upsample: unit j sees pixel j // 2: units 0, 1 -> 0; 2, 3 -> 1
    assert [up.interval(j, 0) for j in range(4)] == [(0, 0), (0, 0), (1, 1), (1, 1)]
    assert (up.rf, up.jump, up.start) == ((1, 1), (0.5, 0.5), (0, 0))
    # conv 3x3 same: unit j reads upsampled units j-1..j+1, pixels (j-1)//2 .. (j+1)//2
    # unit 0: -1..0; unit 1: 0..1; unit 2: 0..1; unit 3: 1..2
    assert [conv.interval(j, 0) for j in range(4)] == [(-1, 0), (0, 1), (0, 1), (1, 2)]
    assert conv.rf == (2, 2) and conv.start == (-0.5, -0.5)


def test_bilinear_by_hand():
    model = archdsl.loads("input 6x5x1\nupsample 2x1 bilinear\n")
    (up,) = archdsl.analyze(model).rows
    assert model.layers[0].output_shape == (12, 5, 1)
    # rows, factor 2: x = (j + 0.5) / 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 -> pixels (-1, 0), (0, 1), (0, 1), (1, 2)
    assert [up.interval(j, 0) for j in range(4)] == [(-1, 0), (0, 1), (0, 1), (1, 2)]
    # columns, factor 1: each unit is its pixel
    assert [up.interval(j, 1) for j in range(3)] == [(0, 0), (1, 1), (2, 2)]
    assert up.rf == (2, 1) and up.jump == (0.5, 1)


def test_the_table_writes_the_jump_as_a_fraction_and_json_as_a_number(capsys, tmp_path):
    spec = tmp_path / "up.arch"
    spec.write_text("input 8x8x1\nupsample 2x\nconv 3x3 1 same\n")
    assert main(["rf", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "  1/2   -0.5" in out and "final receptive field: 2 (jump 1/2) at layer 2" in out
    assert "layers 1-2: after an upsampling, neighbouring units' fields differ" in out
    assert main(["rf", str(spec), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["layers"][1]["jump"] == [0.5, 0.5] and data["final"]["jump"] == [0.5, 0.5]


@pytest.mark.parametrize("bad, message", [
    ("upsample 0", "factor must be between 1 and"),
    ("upsample 2x 3x", "unexpected factor '3x' for upsample"),
    ("upsample 2x nearest bilinear", "a second interpolation for upsample: 'bilinear'"),
    ("conv 3x3 8 2x", "unexpected factor '2x' for conv"),
    ("upsample 50000x", "would output 400,000x400,000"),
])
def test_bad_upsampling_is_a_positioned_error(bad, message, capsys, tmp_path):
    spec = tmp_path / "bad.arch"
    spec.write_text(f"input 8x8x1\n{bad}\n")
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.arch:2:" in err and "Traceback" not in err


@pytest.mark.tf
def test_keras_measures_what_the_analysis_says_on_a_unet():
    from archdsl.keras_backend.verify import verify_rf
    report = verify_rf(archdsl.load("examples/unet_tiny.arch"))
    assert report.ok, report.render()
    assert len(report.rows) == 17
