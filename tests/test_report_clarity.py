"""`archdsl report` says what its numbers are: sizes as height x width, a receptive field larger than the
input marked in the table, a loss chart whose outlier does not flatten the other line (a log axis),
what the validation was made on, and the run's data without the folders of the machine it ran on.

The expected values are worked out by hand from the specs and the synthetic runs written here.
"""
from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archdsl.cli import main
from archdsl.render import charts
from test_report import cards, check_html, report, write_run

NS = "{http://www.w3.org/2000/svg}"
# examples/vgg_pool.arch, input 36x36: the rf column by hand (3x3 convs add 2 x jump, pools (k - 1) x jump):
# 3, 5, 6, 10, 14, 18, 26, 34, 42, 46, 62 for layers 1-11; 42 and up cover the 36x36 input
VGG_RF = {1: "3", 2: "5", 3: "6", 4: "10", 5: "14", 6: "18", 7: "26", 8: "34", 9: "42", 10: "46", 11: "62"}
VGG_COVERING = {9, 10, 11}


def _rf_cells(html_text: str) -> dict[int, str]:
    """layer index -> the text of its rf cell (tags dropped), read from the HTML's rf table."""
    table = re.search(r'<table class="rf">.*?</table>', html_text, re.S).group(0)
    header = [re.sub(r"<[^>]+>", "", h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table)]
    rf_column = header.index("rf (HxW)")
    out = {}
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)[1:]:
        cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
        out[int(cells[0])] = cells[rf_column]
    return out


def test_sizes_say_height_by_width(tmp_path):
    text = report(tmp_path, "examples/vgg_pool.arch")
    check_html(text)
    for header in ("output (HxWxC)", "rf (HxW)", "jump (HxW)", "start (HxW)"):
        assert f">{header}</th>" in text
    assert "Sizes are height x width" in text and "(height x width x channels)" in text
    md = report(tmp_path, "examples/vgg_pool.arch", "md")
    assert "| output (HxWxC) | rf (HxW) | jump (HxW) | start (HxW) |" in md
    assert "| input (HxWxC) | 36x36x3, 10 classes → 10 |" in md


def test_a_non_square_final_rf_says_height_by_width(tmp_path):
    spec = tmp_path / "tall.arch"  # 3x1 kernels: rf grows in height only, 1 + 2 * 3 = 7 rows by 1 column
    spec.write_text("model tall\ninput 16x16x1\nclasses 2\n\nconv 3x1 4 same\nconv 3x1 4 same\n"
                    "conv 3x1 classes same\ngap\nsoftmax\n")
    md = report(tmp_path, str(spec), "md")
    assert "| final receptive field | 7x1 (height x width) (jump 1) at layer 3 |" in md
    assert re.search(r'<div class="value">7x1</div>\s*<div class="sub">height x width · jump 1',
                     report(tmp_path, str(spec)))


def test_an_rf_covering_the_input_is_marked_in_the_table(tmp_path):
    text = report(tmp_path, "examples/vgg_pool.arch")
    cells = _rf_cells(text)
    for index, rf in VGG_RF.items():
        assert cells[index] == (f"{rf} ⊇ input" if index in VGG_COVERING else rf), index
    assert cells[12] == cells[13] == "global"  # gap and softmax: no field of their own, no mark
    assert "⊇ input: the receptive field is at least the 36x36 input" in text
    md = report(tmp_path, "examples/vgg_pool.arch", "md")
    assert "| 9x9x128 | 42 ⊇ input |" in md and "| 3x3x10 | **62** ⊇ input |" in md
    assert "| 9x9x128 | 34 |" in md
    assert "\n⊇ input: the receptive field is at least the 36x36 input" in md  # the footnote


def test_an_rf_wider_than_the_input_only_is_marked_wider(tmp_path):
    spec = tmp_path / "wide.arch"  # input 32 rows by 8 columns; four 3x3 convs: rf 9, wider than 8, not taller
    spec.write_text("model wide\ninput 32x8x1\nclasses 2\n\n" + "conv 3x3 4 same\n" * 3
                    + "conv 3x3 classes same\ngap\nsoftmax\n")
    cells = _rf_cells(report(tmp_path, str(spec)))
    assert [cells[i] for i in (1, 2, 3, 4)] == ["3", "5", "7", "9 wider than input"]
    md = report(tmp_path, str(spec), "md")
    assert "wider than input: the receptive field is more than the input's 8 pixels widthwise" in md
    assert "⊇ input:" not in md


def test_a_spec_inside_the_input_has_no_marks(tmp_path):
    md = report(tmp_path, "specs/best.arch", "md")  # final rf 33 on a 32x32 input: covered at layer 11
    html_text = report(tmp_path, "specs/best.arch")
    assert "⊇ input" in md and "⊇ input" in html_text
    spec = tmp_path / "small.arch"
    spec.write_text("model small\ninput 32x32x3\nclasses 10\n\nconv 3x3 8 same\nconv 3x3 classes same\ngap\nsoftmax\n")
    assert "⊇ input" not in report(tmp_path, str(spec), "md", name="small")


# --- the loss chart ---------------------------------------------------------------------------------

def _paths(svg) -> dict[str, list[tuple[float, float]]]:
    """stroke colour -> the points of that colour's polyline(s)."""
    out: dict[str, list[tuple[float, float]]] = {}
    for p in svg.findall(f".//{NS}path"):
        points = [tuple(map(float, xy.split(","))) for xy in re.findall(r"[ML]([-\d.]+,[-\d.]+)", p.get("d"))]
        out.setdefault(p.get("stroke"), []).extend(points)
    return out


def _history(val_loss_at_3: float) -> str:
    """Six epochs: training loss 2.3, 1.3, 0.97, 0.8, 0.7, 0.63 (2 / e + 0.3), val loss 2.5 / e + 0.4 but
    `val_loss_at_3` at epoch 3 (one diverging epoch)."""
    rows = ["epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds"]
    for e in range(1, 7):
        val = val_loss_at_3 if e == 3 else 2.5 / e + 0.4
        rows.append(f"{e},0.01,{2 / e + 0.3!r},{0.9 - 0.5 / e!r},{val!r},{0.8 - 0.45 / e!r},10")
    return "\n".join(rows) + "\n"


def test_a_val_loss_outlier_does_not_flatten_the_training_loss(tmp_path):
    run, _ = write_run(tmp_path / "run", history=_history(150.2))
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    svg = ET.fromstring(re.search(r'<svg[^>]*aria-label="Loss".*?</svg>', text, re.S).group(0))
    lines = _paths(svg)
    train = [y for _, y in lines[charts.COLOURS[0]]]
    every = [y for points in lines.values() for _, y in points]
    share = (max(train) - min(train)) / (max(every) - min(every))
    # on a log axis the training loss spans log(2.3 / 0.633) / log(150.2 / 0.633) = 0.56 / 2.37 decades, 24 %
    # of the lines' height; on a linear one (2.3 - 0.633) / (150.2 - 0.633), about 1 %
    assert share == pytest.approx(math.log10(2.3 / (2 / 6 + 0.3)) / math.log10(150.2 / (2 / 6 + 0.3)), abs=0.01)
    labels = [t.text for t in svg.findall(f".//{NS}text")]
    assert "log scale" in labels and {"1", "10", "100"} <= set(labels)
    tips = [t.text for t in svg.iter(f"{NS}title")]
    assert "val (test split), epoch 3: 150.2000" in tips  # the outlier is drawn, not clipped


def test_a_loss_within_a_decade_keeps_a_linear_axis(tmp_path):
    run, _ = write_run(tmp_path / "run", history=_history(2.5 / 3 + 0.4))
    text = report(tmp_path, "specs/best.arch", run=run)
    svg = ET.fromstring(re.search(r'<svg[^>]*aria-label="Loss".*?</svg>', text, re.S).group(0))
    assert "log scale" not in [t.text for t in svg.findall(f".//{NS}text")]


def test_log_ticks_by_hand():
    assert charts.log_ticks(0.3, 150) == [1, 10, 100]
    assert charts.log_ticks(0.001, 1000) == [0.001, 0.01, 0.1, 1, 10, 100, 1000]
    # fewer than two powers of ten inside: 1, 2 and 5 times them, from the one at or below the lowest value
    # to the one at or above the highest
    assert charts.log_ticks(0.5, 2.1) == [0.5, 1, 2, 5]
    assert charts.log_ticks(0.316, 4.11) == [0.2, 0.5, 1, 2, 5]
    assert charts.log_ticks(0.55, 0.9) == [0.5, 1]
    ticks = charts.log_ticks(5e-324, 1.7e308)
    assert 2 <= len(ticks) <= 7 and all(0 < t < math.inf for t in ticks)


# --- what the validation was made on -------------------------------------------------------------------

@pytest.mark.parametrize("where, expected", [
    (None, "test split"),                                     # a run made before val_split existed
    ({"metrics": {"val_split": None}}, "test split"),
    ({"metrics": {"settings": {"val_split": 0}}}, "test split"),
    ({"metrics": {"settings": {"val_split": 5000}}}, "held-out 5,000"),
    ({"state": {"settings": {"val_split": 2500}}}, "held-out 2,500"),  # the checkpoint's state.json
])
def test_the_validation_is_labelled_by_its_split(tmp_path, where, expected):
    run, _ = write_run(tmp_path / "run", epochs=4, metrics=(where or {}).get("metrics"))
    if where and "state" in where:
        (run / "checkpoint").mkdir()
        (run / "checkpoint" / "state.json").write_text(json.dumps(where["state"]))
    text = report(tmp_path, "specs/best.arch", run=run)
    c = cards(text)
    assert f"best val accuracy ({expected})" in c and f"final val accuracy ({expected})" in c
    for chart in ("Loss", "Accuracy"):
        svg = re.search(rf'<svg[^>]*aria-label="{chart}".*?</svg>', text, re.S).group(0)
        assert f">val ({expected})</text>" in svg  # the legend
    md = report(tmp_path, "specs/best.arch", "md", run=run)
    assert f"| best val accuracy ({expected}) |" in md


def test_a_val_split_that_is_no_count_is_a_note(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=2, metrics={"settings": {"val_split": "half"}})
    text = report(tmp_path, "specs/best.arch", run=run)
    assert "best val accuracy (test split)" in cards(text)
    assert "the run&#39;s val_split is &#39;half&#39;, not a count of images" in text


# --- the run's data -------------------------------------------------------------------------------------

@pytest.mark.parametrize("source, shown", [
    ("/work/shared/data/cifar10-jpg.tar.gz", "cifar10-jpg.tar.gz"),
    ("/root/archdsl-data/cifar10-q50/", "cifar10-q50"),
    ("C:\\data\\cifar.tgz", "cifar.tgz"),
])
def test_an_absolute_data_path_shows_its_name(tmp_path, source, shown):
    run, _ = write_run(tmp_path / "run", epochs=2, metrics={"data": {"source": source, "train_images": 50000}})
    text = report(tmp_path, "specs/best.arch", run=run)
    assert f'data <b title="{source}">{shown} (50,000 training images)</b>' in text
    md = report(tmp_path, "specs/best.arch", "md", run=run)
    assert f" · data **{shown} (50,000 training images)** · " in md and source not in md


@pytest.mark.parametrize("source", ["../shared/data/cifar10-jpg.tar.gz", "cifar10 (keras.datasets.cifar10)"])
def test_a_relative_data_path_or_a_name_is_shown_as_it_is(tmp_path, source):
    run, _ = write_run(tmp_path / "run", epochs=2, metrics={"data": {"source": source}})
    text = report(tmp_path, "specs/best.arch", run=run)
    assert f"data <b>{source}</b>" in text


# --- the checked example ------------------------------------------------------------------------------

def test_the_docs_example_is_what_the_report_writes(tmp_path, monkeypatch):
    """docs/report_example.md is `archdsl report docs/report_example_run/spec.arch docs/report_example_run`
    (docs/report_example_run/README.txt), but for the version line and the folder its pictures are in."""
    root = Path(__file__).resolve().parent.parent
    monkeypatch.chdir(root)  # the page names the files relative to the repository, as the command run there
    out = tmp_path / "report_example.md"
    assert main(["report", "docs/report_example_run/spec.arch", "docs/report_example_run", "-o", str(out)]) == 0
    version = re.compile(r"^made by archdsl .*$", re.M)
    written = version.sub("", out.read_text(encoding="utf-8"))
    kept = version.sub("", (root / "docs" / "report_example.md").read_text(encoding="utf-8"))
    assert written == kept, "regenerate docs/report_example.md as docs/report_example_run/README.txt says"
