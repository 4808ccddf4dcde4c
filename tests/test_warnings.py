"""Spec warnings (W3xx): coverage judged by the corner units, codes and hints, `allow`, ranges said once.

Expected values are hand computations (in the comments) or text checked by eye; the hints are followed to
specs that are then checked to be accepted and silent.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import archdsl
from archdsl.cli import main
from archdsl.errors import ArchError, Span, SpecWarning
from archdsl.language.formatter import format_spec
from archdsl.language.parser import parse
from archdsl.language.resolve import resolve


def analyse(text: str):
    return archdsl.analyze(archdsl.loads(text))


def run_cli(argv, capsys, monkeypatch, cwd=None):
    if cwd is not None:
        monkeypatch.chdir(cwd)
    status = main(argv)
    out = capsys.readouterr()
    return status, out.out, out.err


# ---------------------------------------------------------------- W301: judged by the corner units

# 8x8 input. Layer 1, 3x3 s2 valid: 3 units (floor((8 - 3) / 2) + 1), unit i centred on pixel 1 + 2i, rf 3, so
# pixel 7 is seen by no unit. Layers 2-5, 3x3 same (stride 1 on the 3x3 map: one zero each side), each widen
# the field by 2 * jump = 4: rf 7, 11, 15, 19.
#   layer 3 (rf 11): unit 0 sees [1 - 5, 1 + 5] = [-4, 6] (misses pixel 7), unit 2 [5 - 5, 5 + 5] = [0, 10]
#   layer 4 (rf 15): unit 0 [-6, 8], unit 2 [-2, 12]: both contain [0, 7]
# So layer 4, whose input (layer 3) has rf 11 >= 8, still adds context to unit 0: size alone would warn there.
# Layer 5's input (layer 4) covers the image at both corners: W301 for layer 5 only.
ASYMMETRIC = "input 8x8x1\nconv 3x3 4 s2 valid\n" + "conv 3x3 4 same\n" * 4


def test_coverage_is_judged_by_the_corner_units_not_the_size():
    a = analyse(ASYMMETRIC)
    assert a.rows[2].rf == (11, 11)  # layer 3: its rf alone is above the 8x8 input
    assert [(w.code, w.layers) for w in a.warnings] == [("W301", (5,))]
    assert a.warnings[0].message.startswith("layer 5 (conv 3x3 4 same): every unit of its input, the corner units "
                                            "too, already sees the whole 8x8 input (rf 15)")


def test_resnet18_at_224_adds_context_at_its_corners_to_the_end():
    # the old check warned at layers 30, 34 and 35 (incoming rf 243, 307, 371 >= 224). Layer 29 (7x7 map, jump
    # 32, unit 0 centred on pixel 0, rf 243, as the golden table says): unit 0 sees [-121, 121], missing
    # pixels 122-223; layer 34's input (rf 371): [-185, 185]. Every 3x3 still widens unit 0's view.
    a = archdsl.analyze(archdsl.load("examples/resnet18_torchvision.arch"))
    assert (a.rows[28].rf, a.rows[28].jump, a.rows[28].start) == ((243, 243), (32, 32), (0.0, 0.0))
    assert not [w for w in a.warnings if w.code == "W301"]


def test_a_centred_stack_warns_rightly_once_for_the_range():
    # 4x4 input, 3x3 same convs: layer k has rf 2k + 1, unit 0 centred on 0 and unit 3 on 3. Layer 3's output
    # (rf 7) covers [0, 3] from unit 0 ([-3, 3]) and unit 3 ([0, 6]): layers 4 and 5 add no context
    a = analyse("input 4x4x1\n" + "conv 3x3 4 same\n" * 5)
    assert [(w.code, w.layers, w.span.line) for w in a.warnings] == [("W301", (4, 5), 5)]
    assert a.warnings[0].message.startswith("layers 4-5 (conv 3x3 4 same): ")


def test_three_thousand_layers_make_one_warning(tmp_path, capsys, monkeypatch):
    # 32x32: layer k's input has rf 2k - 1, unit 0 centred on 0: it sees pixel 31 once 2k - 1 >= 63, k >= 32
    spec = tmp_path / "deep.arch"
    spec.write_text("input 32x32x3\n" + "conv 3x3 8 same relu\n" * 3000)
    status, _, err = run_cli(["rf", str(spec)], capsys, monkeypatch)
    assert status == 0 and err.count("[W301]") == 1, err[:2000]  # `warning: ... [W301]` or `warning[W301]`
    assert "layers 32-3000 (conv 3x3 8 same relu): every unit of each one's input, the corner units too" in err


# ---------------------------------------------------------------- W302: the hint leads to a silent spec

RESIDUAL = "input 32x32x3\nconv 3x3 16 same\nresidual {\n  conv 3x3 32 s2 same bn relu\n  conv 3x3 32 same bn\n}\n"


def test_following_the_shortcut_hint_then_the_warning_hint_is_silent():
    # the issue's path: E263's hint writes the projection, which brings W302; its hint gives a silent spec
    with pytest.raises(ArchError) as exc:
        archdsl.loads(RESIDUAL)
    assert exc.value.code == "E263" and "`conv 1x1 32 s2 same`" in exc.value.render(RESIDUAL)
    projected = RESIDUAL[:-2] + "} shortcut {\n  conv 1x1 32 s2 same\n}\n"
    (w,) = analyse(projected).warnings
    assert w.code == "W302" and w.span == Span("<spec>", 3, 1, 9)
    # TF's SAME on 32 with stride 2 pads 0 before, 1 after: the body's first window is centred on pixel 1, the
    # 1x1's on 0. Symmetric zeros (`pad 1`, 32 + 2 - 3 = 31, // 2 + 1 = 16 units) centre it on 0.
    assert "write layer 2 (line 4) as `conv 3x3 32 s2 pad 1 bn relu`" in w.hint
    fixed = projected.replace("conv 3x3 32 s2 same bn relu", "conv 3x3 32 s2 pad 1 bn relu")
    assert analyse(fixed).warnings == [] and analyse(fixed).silenced == []
    allowed = analyse("allow W302\n" + projected)
    assert allowed.warnings == [] and [w.code for w in allowed.silenced] == ["W302"]


def test_an_even_window_gets_an_odd_one_padded_evenly():
    # maxpool 2x2 (stride 2) on 8: centred on 0.5; `maxpool 3x3 stride 2 pad 1`: (8 + 2 - 3) // 2 + 1 = 4 units,
    # centred on 0, like the 1x1 s2 shortcut
    text = "input 8x8x4\nresidual {\n  maxpool 2x2\n} shortcut {\n  conv 1x1 4 s2 same\n}\n"
    (w,) = analyse(text).warnings
    assert "write layer 1 (line 3) as `maxpool 3x3 stride 2 pad 1`" in w.hint
    fixed = analyse(text.replace("maxpool 2x2", "maxpool 3x3 stride 2 pad 1"))
    assert fixed.warnings == [] and fixed.model.layers[0].output_shape == (4, 4, 4)


# ---------------------------------------------------------------- rendering

def test_a_warning_renders_like_an_error(tmp_path):
    spec = tmp_path / "res.arch"
    spec.write_text(RESIDUAL[:-2] + "} shortcut {\n  conv 1x1 32 s2 same\n}\n")
    (w,) = archdsl.analyze(archdsl.load(spec)).warnings
    assert w.render() == (
        f"{spec}:3:1: warning[W302]: layer 5 (residual add): the merged paths' receptive fields are centred on "
        "different pixels (layer 3 at 1, layer 4 at 0): layer 2 (conv 3x3 32 s2 same bn relu) has stride 2 on "
        "size 32, which TF's SAME padding pads 0 before and 1 after\n"
        "  3 | residual {\n"
        "    | ^^^^^^^^\n"
        "  hint: write layer 2 (line 4) as `conv 3x3 32 s2 pad 1 bn relu` (symmetric zeros, as PyTorch pads, "
        "instead of TF's uneven `same`); if the shift is deliberate, `allow W302` (or `# allow W302` on this line)")
    assert str(w) == (f"{spec}:3:1: [W302] " + w.message + " (hint: " + w.hint + ")")
    assert "\n" not in str(w)


def test_a_file_name_cannot_forge_a_line(tmp_path):
    spec = tmp_path / "a\nb.arch"
    spec.write_text("input 4x4x1\n" + "conv 3x3 4 same\n" * 4)
    (w,) = archdsl.analyze(archdsl.load(spec)).warnings
    assert "\n" not in str(w) and "\n" not in w.render().split("\n")[0] and "a\\nb.arch" in w.render()


def test_an_unregistered_warning_code_is_archdsls_mistake():
    with pytest.raises(AssertionError, match="'W399' is not in archdsl/error_codes.py"):
        SpecWarning("W399", "x", None, None, (1,))


# ---------------------------------------------------------------- silencing

STACK = "input 4x4x1\n" + "conv 3x3 4 same\n" * 6  # W301 on layers 4-6 (lines 5-7)


def test_allow_silences_a_code_for_the_file(capsys, monkeypatch, tmp_path):
    spec = tmp_path / "s.arch"
    spec.write_text("allow W301\n" + STACK)
    status, out, err = run_cli(["rf", str(spec)], capsys, monkeypatch)
    assert status == 0 and err == ""
    assert out.rstrip().endswith("silenced: W301 on layers 4-6 (allow on line 1)")
    status, out, err = run_cli(["check", str(spec)], capsys, monkeypatch)
    assert status == 0 and err == ""


def test_a_pragma_silences_its_own_line_only():
    lines = STACK.splitlines()
    lines[5] += "  # allow W301: deliberate"  # line 6: layer 5
    a = analyse("\n".join(lines) + "\n")
    assert [(w.layers, w.silenced_by) for w in a.warnings] == [((4,), None), ((6,), None)]
    assert [(w.layers, w.silenced_by) for w in a.silenced] == [((5,), 6)]
    assert a.warnings[0].message.startswith("layer 4 (")  # not "layers 4-6": layer 5 between is silenced


def test_a_pragma_in_a_block_silences_every_use():
    text = "input 4x4x1\nblock b {\n  conv 3x3 4 same  # allow W301\n}\n" + "b\n" * 6
    a = analyse(text)
    assert a.warnings == [] and [(w.layers, w.silenced_by) for w in a.silenced] == [((4, 5, 6), 3)]


def test_a_pragma_of_another_code_silences_nothing():
    lines = STACK.splitlines()
    lines[5] += "  # allow W302"
    a = analyse("\n".join(lines) + "\n")
    assert [(w.code, w.layers) for w in a.warnings] == [("W301", (4, 5, 6)), ("W303", ())] and a.silenced == []


# ---------------------------------------------------------------- W303: an allow that silences nothing

def test_an_allow_that_silences_nothing_is_said_where_its_code_is_written():
    text = "allow W302 W301\n" + STACK.replace("conv 3x3 4 same\n", "conv 3x3 4 same  # allow W301\n", 1)
    a = analyse(text)
    # line 1's W301 silences layers 4-6; its W302 and line 3's pragma (layer 1 adds context) silence nothing
    assert [w.silenced_by for w in a.silenced] == [1]
    assert [(w.code, w.span, w.message, w.hint) for w in a.warnings] == [
        ("W303", Span("<spec>", 1, 7, 11), "`allow W302` silences nothing: no layer of the file gets W302",
         "delete W302 from the line (what it allowed is no longer there)"),
        ("W303", Span("<spec>", 3, 26, 30),
         "`# allow W301` silences nothing: the layers of line 3 get no W301",
         "delete the comment (what it allowed is no longer there)"),
    ]
    # following the hints gives a silent spec
    fixed = text.replace("allow W302 W301", "allow W301").replace("  # allow W301", "")
    assert analyse(fixed).warnings == []


def test_allow_w303_keeps_unused_allows_quiet():
    a = analyse("allow W303\nallow W302\n" + STACK.replace("\nconv", "\nconv", 1))
    assert [w.code for w in a.warnings] == ["W301"]
    assert [w.code for w in analyse("allow W302\n" + STACK).warnings] == ["W301", "W303"]


@pytest.mark.parametrize("text,code,message,hint", [
    ("allow W31\n" + STACK, "E270", "unknown warning code 'W31'", "did you mean W301?"),
    ("allow E206\n" + STACK, "E270", "unknown warning code 'E206'", "E206 is an error, which cannot be allowed"),
    (STACK.replace("conv 3x3 4 same\n", "conv 3x3 4 same  # allow w399\n", 1), "E270",
     "unknown warning code 'w399'", "warnings are W301, W302"),
    ("# allow W301\n" + STACK, "E271", "line 1 writes none", "write `allow W301` on a line of its own"),
    ("input 4x4x1\nblock b {\n  allow W301\n  conv 3x3 4 same\n}\nb\n", "E206", "unknown op 'allow'",
     "`allow` goes on a line of its own outside any block"),
])
def test_a_wrong_allow_is_an_error_with_a_hint(text, code, message, hint):
    with pytest.raises(ArchError) as exc:
        archdsl.loads(text)
    assert exc.value.code == code and message in exc.value.message and hint in exc.value.hint


def test_a_comment_that_merely_starts_with_allow_is_a_comment():
    lines = STACK.splitlines()
    lines[1] += "  # allow more channels later"
    assert [w.layers for w in analyse("\n".join(lines) + "\n").warnings] == [(4, 5, 6)]


def test_the_hints_allow_is_accepted_and_silent():
    (w,) = analyse(STACK).warnings
    assert "`allow W301` on a line of its own" in w.hint
    a = analyse("allow W301\n" + STACK)
    assert a.warnings == [] and len(a.silenced) == 1


# ---------------------------------------------------------------- fmt

def test_fmt_writes_allow_canonically_and_keeps_pragmas():
    text = "input 4x4x1\nallow   w301,W302\nconv 3x3 4 same   # allow W301 why\n"
    formatted = format_spec(parse(text))
    assert formatted == "input 4x4x1\nallow W301 W302\nconv 3x3 4 same  # allow W301 why\n"
    assert format_spec(parse(formatted)) == formatted
    def meaning(allows):  # the columns are where a message points, which formatting moves, as a layer's
        return [(a.codes, a.line, a.whole_file) for a in allows]
    assert meaning(resolve(parse(formatted)).allows) == meaning(resolve(parse(text)).allows)


def test_allows_are_not_part_of_a_runs_model():
    model = archdsl.loads("allow W301\n" + STACK)
    assert model.allows and "allows" not in model.model_dump()


# ---------------------------------------------------------------- every format says the same

def test_every_format_carries_the_warnings(tmp_path, capsys, monkeypatch):
    lines = STACK.splitlines()
    lines[5] += "  # allow W301"
    spec = tmp_path / "s.arch"
    spec.write_text("\n".join(lines) + "\n")
    outputs = {}
    for fmt in ("table", "markdown", "json", "csv"):
        status, outputs[fmt], err = run_cli(["rf", str(spec), "--format", fmt], capsys, monkeypatch)
        assert status == 0 and err.count("[W301]") == 2  # layers 4 and 6 are said; 5 is silenced
    assert "\nsilenced: W301 on layer 5 (# allow on line 6)\n" in outputs["table"] + "\n"
    assert "\n- silenced: W301 on layer 5 (# allow on line 6)" in outputs["markdown"]
    warnings = json.loads(outputs["json"])["warnings"]
    assert [(w["code"], w["layers"], w["line"], w["silenced"]) for w in warnings] == [
        ("W301", [4], 5, False), ("W301", [5], 6, True), ("W301", [6], 7, False)]
    assert all(w["hint"] and w["message"].startswith(f"layer {w['layers'][0]} (") for w in warnings)
    rows = list(csv.DictReader(io.StringIO(outputs["csv"])))
    assert [r["warnings"] for r in rows] == ["", "", "", "W301", "W301 silenced", "W301"]


def test_a_hint_inside_a_block_names_the_word_to_change_and_leads_to_a_silent_spec(tmp_path):
    # ResNet-8's stack(c, s): line 11 `conv 3x3 c stride s same bias bn relu`, used with s = 2 on 32 and 16 (even)
    source = Path("examples/resnet8.arch").read_text()
    hints = [w.hint for w in archdsl.analyze(archdsl.load("examples/resnet8.arch")).warnings]
    assert len(hints) == 2 and all(h.startswith("on line 11 (block stack(") and "write `pad 1` for `same`" in h
                                   for h in hints)
    lines = source.splitlines(keepends=True)
    assert lines[10] == "    conv 3x3 c stride s same bias bn relu\n"
    lines[10] = lines[10].replace("same", "pad 1")
    fixed = tmp_path / "resnet8.arch"
    fixed.write_text("".join(lines))
    a = archdsl.analyze(archdsl.load(fixed))
    assert a.warnings == [] and a.params == 78_666  # the golden table's count: padding changes no weight
