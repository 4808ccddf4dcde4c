"""Design spaces (`choose` lines) and `archdsl space`: each variant is the spec a person would write with
those values (checked against hand-written specs and hand-counted params), counted and filtered by its
asserts; the errors of bad spaces are tests/bad/space_*.arch (test_errors.py)."""
from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import pytest

from archdsl import loads
from archdsl.analysis import analyze
from archdsl.cli import main
from archdsl.language.choices import check_choices, combinations, concrete_text, describe, instantiate
from archdsl.language.formatter import format_spec
from archdsl.language.parser import parse
from archdsl.language.resolve import resolve

SPACE = """\
# a tiny space
model tiny
choose w in [8, 16]      # width
choose k in [3x3, 5x5]
choose n in [1, 2]
choose rate in [0.1, 0.3]
input 16x16x3
classes 4

block stage(c, reps=n) {
  reps * sep k c same bn relu
}

stage(w)
maxpool 2x2
gap
dense classes softmax

assert params <= 450
train {
  lr rate
}
"""


def hand_written(w: int, k: int, n: int, rate: float) -> str:
    """The variant as a person writes it without choices."""
    layers = "\n".join([f"sep {k}x{k} {w} same bn relu"] * n)
    return f"input 16x16x3\nclasses 4\n{layers}\nmaxpool 2x2\ngap\ndense 4 softmax\ntrain {{\n  lr {rate}\n}}\n"


def hand_params(w: int, k: int, n: int) -> int:
    """sep: depthwise k*k*cin, pointwise cin*w, no bias (bn follows); bn: 4 per channel; dense: w*4 + 4."""
    total, cin = 0, 3
    for _ in range(n):
        total += k * k * cin + cin * w + 4 * w
        cin = w
    return total + w * 4 + 4


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return status, out.getvalue(), err.getvalue()


@pytest.fixture()
def space_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.arch"
    path.write_text(SPACE, encoding="utf-8")
    return path


def test_every_variant_is_the_hand_written_spec():
    spec = parse(SPACE, "tiny.arch")
    choices = check_choices(spec)
    picks = list(combinations(choices))
    assert len(picks) == 2 * 2 * 2 * 2
    # the last choice varies fastest, as itertools.product
    assert [describe(p) for p in picks[:3]] == ["w=8 k=3x3 n=1 rate=0.1", "w=8 k=3x3 n=1 rate=0.3",
                                                "w=8 k=3x3 n=2 rate=0.1"]
    for p in picks:
        w, k, n, rate = int(p["w"].text), p["k"].dims[0], int(p["n"].text), float(p["rate"].text)
        model = resolve(instantiate(spec, p)[0])
        expected = loads(hand_written(w, k, n, rate))
        assert [layer.text for layer in model.layers] == [layer.text for layer in expected.layers]
        assert [layer.output_shape for layer in model.layers] == [layer.output_shape for layer in expected.layers]
        assert model.train.lr == rate
        assert analyze(model).params == hand_params(w, k, n)


def test_space_lists_the_feasible_variants_with_hand_counted_params(space_file):
    status, out, err = run("space", str(space_file), "--format", "json")
    assert status == 0 and err == ""
    table = json.loads(out)
    feasible = [(w, k, n, r) for w in (8, 16) for k in (3, 5) for n in (1, 2) for r in ("0.1", "0.3")
                if hand_params(w, k, n) <= 450]
    assert table["combinations"] == 16
    assert table["feasible"] == len(feasible) and table["ruled_out"] == {"assert params <= 450": 16 - len(feasible)}
    assert [(int(v["choices"]["w"]), int(v["choices"]["k"][0]), int(v["choices"]["n"]), v["choices"]["rate"])
            for v in table["variants"]] == feasible
    for v in table["variants"]:
        assert v["params"] == hand_params(int(v["choices"]["w"]), int(v["choices"]["k"][0]), int(v["choices"]["n"]))


def test_the_formats_agree_and_sort(space_file):
    _, as_json, _ = run("space", str(space_file), "--format", "json", "--sort", "params", "--descending")
    _, as_csv, _ = run("space", str(space_file), "--format", "csv", "--sort", "params", "--descending")
    _, as_table, _ = run("space", str(space_file), "--sort", "params", "--descending", "--top", "3")
    rows = json.loads(as_json)["variants"]
    assert [v["params"] for v in rows] == sorted((v["params"] for v in rows), reverse=True)
    records = list(csv.DictReader(io.StringIO(as_csv)))
    assert [(int(r["index"]), int(r["params"]), int(r["macs"]), int(r["ram"])) for r in records] == \
        [(v["index"], v["params"], v["macs"], v["ram"]) for v in rows]
    lines = as_table.splitlines()
    assert lines[0].startswith(f"design space {space_file}: 16 combinations, {len(rows)} feasible; ruled out: ")
    body = lines[4:7]
    assert [int(line.split()[0]) for line in body] == [v["index"] for v in rows[:3]]
    assert lines[-1] == f"(3 of {len(rows)} feasible variants shown)"


def test_write_makes_specs_equal_to_the_hand_written_ones(space_file, tmp_path):
    out = tmp_path / "variants"
    status, stdout, err = run("space", str(space_file), "--write", str(out))
    assert status == 0
    table = json.loads(run("space", str(space_file), "--format", "json")[1])
    written = sorted(out.iterdir())
    assert [p.name for p in written] == [f"tiny-{v['index']:02d}.arch" for v in table["variants"]]
    for path, v in zip(written, table["variants"]):
        c = v["choices"]
        mine = json.loads(run("rf", str(path), "--format", "json")[1])
        hand = tmp_path / "hand.arch"
        hand.write_text(hand_written(int(c["w"]), int(c["k"][0]), int(c["n"]), float(c["rate"])), encoding="utf-8")
        theirs = json.loads(run("rf", str(hand), "--format", "json")[1])
        assert [(r["output_shape"], r["rf"], r["params"], r["macs"]) for r in mine["layers"]] == \
            [(r["output_shape"], r["rf"], r["params"], r["macs"]) for r in theirs["layers"]]
        assert run("check", str(path))[0] == 0
    # a second write refuses, and changes nothing
    before = {p: p.read_bytes() for p in written}
    status, _, err = run("space", str(space_file), "--write", str(out))
    assert status == 2 and "error[E603]" in err and "Traceback" not in err
    assert {p: p.read_bytes() for p in sorted(out.iterdir())} == before


def test_the_written_variant_keeps_the_users_lines_and_says_what_was_chosen():
    spec = parse(SPACE, "tiny.arch")
    picks = list(combinations(check_choices(spec)))[5]   # w=8 k=5x5 n=1 rate=0.3
    text = concrete_text(spec, picks)
    assert text.splitlines()[:6] == [
        "# a tiny space",
        "model tiny",
        "# w = 8, chosen from: choose w in [8, 16]      # width",
        "# k = 5x5, chosen from: choose k in [3x3, 5x5]",
        "# n = 1, chosen from: choose n in [1, 2]",
        "# rate = 0.3, chosen from: choose rate in [0.1, 0.3]",
    ]
    assert "block stage(c, reps=1) {\n  reps * sep 5x5 c same bn relu\n}" in text
    assert "stage(8)\n" in text and "  lr 0.3\n" in text


def test_fmt_prints_choices_canonically_and_is_idempotent():
    messy = "choose  w in [8,16]\nchoose r in [.10, 0.3]\ninput 8x8x3\nsep 3x3 w same\ntrain {\n  lr r\n}\n"
    once = format_spec(parse(messy, "m.arch"))
    assert once.splitlines()[:2] == ["choose w in [8, 16]", "choose r in [0.1, 0.3]"]
    assert format_spec(parse(once, "m.arch")) == once


def test_a_block_parameter_can_be_a_repeat_count():
    model = loads("input 8x8x3\nblock b(n) {\n  n * conv 3x3 4 same\n}\nb(3)\n")
    assert [layer.text for layer in model.layers] == ["conv 3x3 4 same"] * 3


def test_commands_that_need_one_model_refuse_a_space(space_file):
    status, out, err = run("rf", str(space_file))
    assert status == 2 and out == ""
    assert f"{space_file}:3:1: error[E285]: {space_file} is a design space" in err
    assert "archdsl space FILE" in err


def test_check_reads_a_space_like_space(space_file):
    status, out, _ = run("check", str(space_file))
    assert status == 0
    assert out.startswith(f"{space_file}: ok (a design space: 16 combinations, ")
