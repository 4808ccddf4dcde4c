"""`archdsl report`: HTML and Markdown reports of every spec, with and without a run directory.

The HTML is parsed (tags balanced, no script, every inline SVG well-formed XML) and read back
for what it must show: each layer's row, each assert's status with its actual value, the
diagram, the training curves, and the run's metrics as metrics.json has them. User text
(file paths, comments, a run's metrics and history) must arrive escaped.
"""
from __future__ import annotations

import html
import json
import math
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest

import archdsl
from archdsl import safe_text
from archdsl.render import charts
from archdsl.runs import reader as run_reader
from archdsl.analysis import check_assertions
from archdsl.cli import main
from spec_files import spec_paths

ROOT = Path(__file__).resolve().parent.parent
SPECS = spec_paths()
HAS_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAS_DOT, reason="graphviz `dot` is not installed (apt-get install graphviz); "
                               "CI installs it")
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "wbr", "area", "base", "source", "track"}
SVG_RE = re.compile(r"<svg\b.*?</svg>", re.S)

# --- helpers ------------------------------------------------------------------------------------


class _Checker(HTMLParser):
    """Tags balanced (outside void elements and SVG's self-closing ones); records every tag seen."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.tags: list[tuple[str, dict]] = []
        self.errors: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()


def check_html(text: str) -> _Checker:
    checker = _Checker()
    checker.feed(text)
    checker.close()
    assert not checker.errors, checker.errors[:5]
    assert checker.stack == [], checker.stack
    tags = {t for t, _ in checker.tags}
    assert "script" not in tags and "iframe" not in tags and "object" not in tags
    assert not [(t, a) for t, a in checker.tags for k in a if k.startswith("on")], "event handler attribute"
    assert not [(t, a) for t, a in checker.tags if t in ("link", "img") or "src" in a], "external asset"
    for svg in SVG_RE.findall(text):
        ET.fromstring(svg)  # each inline SVG is well-formed XML
    return checker


def report(tmp_path: Path, spec: str, ext: str = "html", run: Path | None = None, name: str = "report",
           capsys=None) -> str:
    out = tmp_path / f"{name}.{ext}"
    argv = ["report", spec] + ([str(run)] if run else []) + ["-o", str(out)]
    assert main(argv) == 0
    return out.read_text(encoding="utf-8")


def load(spec: str):
    model = archdsl.load(spec)
    return model, archdsl.analyze(model)


def cards(text: str) -> dict[str, tuple[str, str]]:
    """label -> (value, sub-line) of the HTML's summary cards."""
    found = re.findall(r'<div class="label">(.*?)</div>\s*<div class="value">(.*?)</div>\s*'
                       r'<div class="sub">(.*?)</div>', text, re.S)
    return {html.unescape(k): (html.unescape(v), html.unescape(s)) for k, v, s in found}


def write_run(folder: Path, epochs: int = 6, planned: int | None = None, metrics: dict | None = None,
              history: str | None = None) -> tuple[Path, dict]:
    """A synthetic run directory: history.csv of `epochs` rows and metrics.json as `archdsl train` writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for e in range(1, epochs + 1):
        rows.append({"epoch": e, "lr": 0.01 / (1 + 0.319 * (e - 1)), "loss": 2.0 / e + 0.3, "accuracy": 0.9 - 0.5 / e,
                     "val_loss": 2.1 / e + 0.4, "val_accuracy": 0.8 - 0.45 / e + (0.05 if e == 4 else 0),
                     "seconds": 10.0 + e / 10})
    if history is None:
        history = "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n" + "".join(
            ",".join(repr(r[c]) for c in ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"))
            + "\n" for r in rows)
    (folder / "history.csv").write_text(history)
    best = max(rows, key=lambda r: r["val_accuracy"]) if rows else None
    m = {"spec": "best", "run_dir": str(folder), "complete": epochs >= (planned or epochs),
         "epochs_done": epochs, "epochs": planned or epochs,
         "best_epoch": best and best["epoch"], "best_val_accuracy": best and best["val_accuracy"],
         "final_val_accuracy": rows[-1]["val_accuracy"] if rows else None,
         "final_val_loss": rows[-1]["val_loss"] if rows else None,
         "wall_seconds": sum(r["seconds"] for r in rows), "train_seconds": 55.5,
         "images_per_second": 1234.56, "images_per_second_after_epoch_1": 1500.4, "params": 76995, "seed": 0,
         "batch": 128, "lr": 0.01, "data": {"source": "cifar10", "train_images": 50000, "test_images": 10000}}
    m.update(metrics or {})
    (folder / "metrics.json").write_text(json.dumps(m))
    return folder, m


# --- every spec, both formats ------------------------------------------------------------------------

@pytest.mark.parametrize("spec", SPECS)
def test_html_report_of_every_spec(spec, tmp_path):
    text = report(tmp_path, spec)
    check_html(text)
    model, analysis = load(spec)
    rows = re.findall(r"<tr(?: class=\"final\")?>\s*<td class=\"right\">(\d+)</td>\s*<td class=\"right\">(\d+)</td>"
                      r"\s*<td><code>(.*?)</code></td>", text)
    assert [(int(i), int(line), html.unescape(t)) for i, line, t in rows] == \
        [(layer.index, layer.where.line, layer.text) for layer in model.layers]
    assert f"<h1>model <code>{model.name}</code></h1>" in text
    assert f"{analysis.params:,}" in text and f"{analysis.macs:,}" in text
    statuses = re.findall(r'<span class="status (ok|bad)">(ok|FAIL)</span></td>\s*<td><code>(.*?)</code></td>', text)
    results = check_assertions(analysis)
    assert [(s, t) for _, s, t in statuses] == [("ok" if r.ok else "FAIL", html.escape(r.assertion.text))
                                              for r in results]
    # the bars: one a layer with params or MACs, the widest 100 %
    widths = [float(w) for w in re.findall(r'class="bar params" style="width: ([\d.]+)%"', text)]
    assert len(widths) == sum(1 for r in analysis.rows if r.params or r.macs)
    assert max(widths) == 100.0
    if HAS_DOT:
        diagram = re.search(r'<svg[^>]*class="diagram".*?</svg>', text, re.S)
        assert diagram, "the diagram is inline"
        svg_text = " ".join(t.text or "" for t in ET.fromstring(diagram.group(0)).iter())
        for layer in model.layers:
            assert layer.text in svg_text


@pytest.mark.parametrize("spec", SPECS)
def test_markdown_report_of_every_spec(spec, tmp_path):
    text = report(tmp_path, spec, "md")
    model, analysis = load(spec)
    for layer in model.layers:
        assert re.search(rf"^\| {layer.index} \| {layer.where.line} \| {re.escape(safe_text.md_code(layer.text))} \|",
                         text, re.M), layer.text
    for r in check_assertions(analysis):
        status = "✅ ok" if r.ok else "❌ **FAIL**"
        assert f"| {status} | {safe_text.md_code(r.assertion.text)} | {r.assertion.where.line} |" in text
    assert "<script" not in text.lower()
    if HAS_DOT:
        assert "![diagram of" in text and "(report_files/diagram.svg)" in text
        ET.parse(tmp_path / "report_files" / "diagram.svg")


def test_failing_assert_shows_actual_value(tmp_path, capsys):
    spec = tmp_path / "small.arch"
    spec.write_text("model small\ninput 8x8x1\nclasses 2\n\nconv 3x3 8 same\nconv 3x3 classes same\ngap\n"
                    "softmax\n\nassert params <= 10\nassert ops in [sep, gap, softmax]\nassert rf >= 3\n")
    text = report(tmp_path, str(spec))
    check_html(text)
    rows = re.findall(r'<span class="status (?:ok|bad)">(ok|FAIL)</span></td>\s*<td><code>(.*?)</code></td>'
                      r'<td class="right">(\d+)</td><td>(.*?)</td>', text)
    assert rows == [("FAIL", "assert params &lt;= 10", "10", "params is 216"),
                    ("FAIL", "assert ops in [sep, gap, softmax]", "11", "uses conv"),
                    ("ok", "assert rf &gt;= 3", "12", "rf is 5")]
    assert cards(text)["asserts"] == ("1 / 3 ok", "2 failed")
    assert "2 asserts of" in capsys.readouterr().err
    md = report(tmp_path, str(spec), "md")
    assert "| ❌ **FAIL** | `assert params <= 10` | 10 | params is 216 |" in md


# --- a run directory -------------------------------------------------------------------------------

def test_run_curves_and_metrics(tmp_path):
    run, m = write_run(tmp_path / "run", epochs=6)
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    charts = {c: re.search(rf'<svg[^>]*aria-label="{c}".*?</svg>', text, re.S) for c in
              ("Loss", "Accuracy", "Learning rate")}
    assert all(charts.values()), [c for c, found in charts.items() if not found]
    for name, found in charts.items():
        svg = ET.fromstring(found.group(0))
        ns = "{http://www.w3.org/2000/svg}"
        lines = svg.findall(f".//{ns}path")
        assert len(lines) == (1 if name == "Learning rate" else 2)  # train and val
        assert len(svg.findall(f".//{ns}circle")) == 6 * len(lines)  # a point an epoch
    c = cards(text)
    assert c["best val accuracy (test split)"] == (f"{m['best_val_accuracy'] * 100:.2f} %", f"epoch {m['best_epoch']}")
    assert c["final val accuracy (test split)"][0] == f"{m['final_val_accuracy'] * 100:.2f} %"
    assert c["wall time"][0] == f"{m['wall_seconds']:,.1f} s"
    assert c["training images/s"] == ("1,235", "1,500 after epoch 1")
    assert c["epochs"] == ("6 of 6", "complete")
    assert m["best_epoch"] == 4  # the synthetic run peaks early; the chart marks it
    assert "best 4" in charts["Accuracy"].group(0)
    assert "incomplete" not in text


def test_incomplete_run_is_noted(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=3, planned=50)
    text = report(tmp_path, "specs/best.arch", run=run)
    assert "incomplete run: 3 of 50 planned epochs in history.csv" in text
    assert cards(text)["epochs"] == ("3 of 50", "incomplete")
    md = report(tmp_path, "specs/best.arch", "md", run=run)
    assert "> **incomplete run: 3 of 50 planned epochs in history.csv**" in md


def test_markdown_run_writes_curves_beside_it(tmp_path):
    run, m = write_run(tmp_path / "run", epochs=5)
    text = report(tmp_path, "specs/best.arch", "md", run=run, name="notes")
    for name in ("loss", "accuracy", "lr"):
        assert f"![{name}](notes_files/{name}.svg)" in text
        ET.parse(tmp_path / "notes_files" / f"{name}.svg")
    assert f"| best val accuracy (test split) | {m['best_val_accuracy'] * 100:.2f} % | epoch {m['best_epoch']} |" in text
    assert f"| wall time | {m['wall_seconds']:,.1f} s |" in text


def test_run_without_metrics_uses_history(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=4)
    (run / "metrics.json").unlink()
    text = report(tmp_path, "specs/best.arch", run=run)
    assert "the run has no metrics.json" in text
    c = cards(text)
    assert c["best val accuracy (test split)"] == (f"{(0.8 - 0.45 / 4 + 0.05) * 100:.2f} %", "epoch 4")
    assert c["wall time"][0] == f"{sum(10.0 + e / 10 for e in range(1, 5)):,.1f} s"
    assert c["training images/s"][0] == "—"


def test_history_without_optional_columns(tmp_path):
    run, _ = write_run(tmp_path / "run", history="epoch,loss,val_loss\n1,2.0,2.5\n2,1.5,2.0\n")
    (run / "metrics.json").unlink()
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    assert 'aria-label="Loss"' in text
    assert 'aria-label="Accuracy"' not in text and 'aria-label="Learning rate"' not in text
    assert "history.csv has no lr, accuracy, val_accuracy, seconds columns" in text
    assert cards(text)["best val accuracy (test split)"][0] == "—"


def test_reads_the_files_the_trainer_writes():
    from archdsl import runs
    run = runs.RunDir("r")
    assert (run.history.name, run.metrics.name, run.spec.name) == (run_reader.HISTORY, run_reader.METRICS,
                                                                   "spec.arch")
    assert run.state.relative_to(run.path).as_posix() == "checkpoint/state.json"


def test_run_as_the_trainer_writes_it(tmp_path):
    """history.csv and metrics.json made by archdsl.runs itself, from a trainer state."""
    runs = pytest.importorskip("archdsl.runs")
    history = [{"epoch": e, "lr": 0.01 / e, "loss": 2.0 / e, "accuracy": 0.5 + e / 20, "val_loss": 2.2 / e,
                "val_accuracy": 0.45 + e / 25, "seconds": 30.0 + e, "train_seconds": 25.0 + e} for e in (1, 2, 3)]
    state = {"spec": "best", "complete": False, "epoch": 3, "epochs": 10, "best": {"epoch": 3, "val_accuracy": 0.57},
             "history": history, "data": {"source": "cifar10", "train_images": 2000, "test_images": 500},
             "settings": {"seed": 0}, "batch": 128, "lr": 0.01, "params": 76995}
    run = tmp_path / "run"
    run.mkdir()
    (run / run_reader.HISTORY).write_text(runs.history_csv(history))
    metrics = runs.summarize(state)
    (run / run_reader.METRICS).write_text(json.dumps(metrics))
    text = report(tmp_path, "specs/best.arch", run=run)
    c = cards(text)
    assert c["best val accuracy (test split)"] == ("57.00 %", "epoch 3")
    assert c["final val accuracy (test split)"][0] == "57.00 %"
    assert c["wall time"][0] == f"{metrics['wall_seconds']:,.1f} s" == "96.0 s"
    assert c["training images/s"][0] == f"{metrics['images_per_second']:,.0f}"
    assert "incomplete run: 3 of 10 planned epochs" in text
    for chart in ("Loss", "Accuracy", "Learning rate"):
        assert f'aria-label="{chart}"' in text


def test_empty_history(tmp_path):
    run, _ = write_run(tmp_path / "run", history="epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n")
    (run / "metrics.json").unlink()
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    assert "history.csv has no epochs yet" in text


# --- user text is escaped -------------------------------------------------------------------------

SCRIPT = "<script>alert(1)</script>"


def test_user_text_is_escaped_in_html(tmp_path):
    folder = tmp_path / "<b>bold"
    folder.mkdir()
    spec = folder / "x.arch"
    # a comment with markup, and a layer whose rf covers the input early: a warning naming the file
    spec.write_text(f"# {SCRIPT} & <i>comment</i>\nmodel x\ninput 4x4x1\nclasses 2\n\n"
                    "conv 3x3 4 same\nconv 3x3 4 same\nconv 3x3 classes same\ngap\nsoftmax\n")
    run, _ = write_run(tmp_path / "run", epochs=3, metrics={
        "spec": SCRIPT, "best_val_accuracy": SCRIPT, "batch": "<img src=x onerror=alert(1)>",
        "data": {"source": "<svg onload=alert(1)>", "train_images": 10}},
        history="epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds,<script>x</script>\n"
                f"1,0.01,2.0,0.3,2.1,0.2,1.0,1\n2,0.01,{SCRIPT},0.4,1.9,0.3,1.0,1\n")
    text = report(tmp_path, str(spec), run=run)
    check_html(text)  # no script tag, no on* attribute, no img
    low = text.lower()
    assert "<script" not in low and "<img" not in low and "<svg onload" not in low and "<b>bold" not in text
    assert text.count("&lt;b&gt;bold/x.arch") >= 3  # the path: header, warning, spec heading
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;i&gt;comment&lt;/i&gt;" in text  # the comment
    assert "&lt;svg onload=alert(1)&gt;" in text  # data source
    assert "&lt;img src=x onerror=alert(1)&gt;" in text  # batch
    assert "best_val_accuracy is &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;, not a number" in text
    assert "columns this report does not show: &lt;script&gt;x&lt;/script&gt;" in text
    assert "line 3 loss &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;" in text


def test_user_text_is_escaped_in_markdown(tmp_path):
    folder = tmp_path / "<b>b|`q`"
    folder.mkdir()
    spec = folder / "x.arch"
    # six 3x3 convs on a 4x4 input: from layer 4 on every unit of the input, corners too, sees it all (a
    # warning, which names the file)
    spec.write_text("model x\ninput 4x4x1\nclasses 2\n\n" + "conv 3x3 4 same\n" * 5
                    + "conv 3x3 classes same\ngap\nsoftmax\n")
    run, _ = write_run(tmp_path / "run", epochs=2, metrics={
        "spec": SCRIPT, "data": {"source": "a|b`c`<i>*d*", "train_images": 10}})
    text = report(tmp_path, str(spec), "md", run=run)
    assert " · data **a\\|b\\`c\\`&lt;i>\\*d\\* (10 training images)** · " in text
    assert "model trained **&lt;script>alert(1)&lt;/script>** · " in text
    assert f"| file | {safe_text.md_code(str(spec))} |" in text and "\\|" in safe_text.md_code(str(spec))
    warning = next(line for line in text.splitlines() if line.startswith("- ⚠️ warning:"))
    assert "&lt;b>b\\|\\`q\\`/x.arch" in warning and "<b>" not in warning
    # outside code (fenced source, code spans) no raw markup remains
    prose = re.sub(r"```.*?```|`` .*? ``|`[^`\n]*`", "", text, flags=re.S)
    assert "<b>" not in prose and "<script" not in prose and "<i>" not in prose


def test_markdown_escaping_helpers():
    assert safe_text.md_text("a|b `c` *d* _e_ [f](g) <h> & ~~i~~") == \
        "a\\|b \\`c\\` \\*d\\* \\_e\\_ \\[f\\](g) &lt;h> &amp; \\~\\~i\\~\\~"
    assert safe_text.md_text("two\nlines") == "two lines"
    assert safe_text.md_code("conv 3x3") == "`conv 3x3`"
    assert safe_text.md_code("a|b`c") == "`` a\\|b`c ``"
    assert safe_text.md_fence("x\n```\ny") == "````text\nx\n```\ny\n````"


def test_svg_sanitizer_keeps_drawing_and_drops_the_rest():
    svg = ('<?xml version="1.0"?><!DOCTYPE svg><svg xmlns="http://www.w3.org/2000/svg" '
           'xmlns:xlink="http://www.w3.org/1999/xlink" width="10pt" onload="alert(1)">'
           '<script>alert(2)</script><g id="g"><text x="1">&lt;script&gt;</text>'
           '<a xlink:href="javascript:alert(3)" xlink:title="tip"><path d="M0,0"/></a>'
           '<foreignObject><div>x</div></foreignObject></g></svg>')
    out = str(safe_text.sanitize_svg(svg, css_class="diagram"))
    assert "script>" not in out.replace("&lt;script&gt;", "")
    assert "onload" not in out and "javascript" not in out and "foreignObject" not in out
    assert '<text x="1">&lt;script&gt;</text>' in out and 'xlink:title="tip"' in out
    assert 'class="diagram"' in out
    ET.fromstring(out)


# --- the diagram without graphviz ------------------------------------------------------------------

def test_without_dot_the_report_says_so(tmp_path, monkeypatch, capsys):
    from archdsl.render import graphviz as gv
    monkeypatch.setattr(gv.shutil, "which", lambda name: None)
    text = report(tmp_path, "specs/best.arch")
    check_html(text)
    assert "the graphviz program `dot` is not installed" in html.unescape(text)
    assert 'class="diagram"' not in text and "sep 3x3 128 s2 same drop 0.1 bn relu" in text
    assert "<pre>" in text  # the terminal drawing instead
    assert "`dot` is not installed" in capsys.readouterr().err
    md = report(tmp_path, "specs/best.arch", "md")
    assert "diagram.svg" not in md and "```text\nmodel best" in md and "●   1  sep 3x3 16" in md
    assert not (tmp_path / "report_files").exists()


# --- bad input -------------------------------------------------------------------------------------

def test_unknown_extension(tmp_path, capsys):
    assert main(["report", "specs/best.arch", "-o", str(tmp_path / "report.pdf")]) == 2
    err = capsys.readouterr().err
    assert "cannot tell the report format" in err and "report.html" in err and "report.md" in err
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_left_alone(tmp_path, capsys):
    for ext in ("html", "md"):
        out = tmp_path / f"report.{ext}"
        out.write_text("mine")
        assert main(["report", "specs/best.arch", "-o", str(out)]) == 2
        assert out.read_text() == "mine"
        assert "already exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.md"]


@needs_dot
def test_existing_companion_file_is_left_alone(tmp_path, capsys):
    (tmp_path / "report_files").mkdir()
    (tmp_path / "report_files" / "diagram.svg").write_text("mine")
    assert main(["report", "specs/best.arch", "-o", str(tmp_path / "report.md")]) == 2
    assert "diagram.svg already exists" in capsys.readouterr().err
    assert (tmp_path / "report_files" / "diagram.svg").read_text() == "mine"
    assert not (tmp_path / "report.md").exists()


def test_missing_run_dir(tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", "specs/best.arch", str(tmp_path / "nope"), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"run directory {tmp_path / 'nope'} does not exist" in err and "hint:" in err
    assert not out.exists()


def test_run_dir_without_history(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.json").write_text("{}")
    out = tmp_path / "r.md"
    assert main(["report", "specs/best.arch", str(run), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert f"{run} has no history.csv" in err and "archdsl train" in err
    assert not out.exists() and not (tmp_path / "r_files").exists()


def test_run_dir_is_a_file(tmp_path, capsys):
    f = tmp_path / "history.csv"
    f.write_text("epoch\n")
    assert main(["report", "specs/best.arch", str(f), "-o", str(tmp_path / "r.html")]) == 1
    assert "is not a directory" in capsys.readouterr().err


def test_bad_spec_writes_nothing(tmp_path, capsys):
    spec = tmp_path / "bad.arch"
    spec.write_text("model m\ninput 32x32x3\nsepp 3x3 16\n")
    assert main(["report", str(spec), "-o", str(tmp_path / "r.html")]) == 2
    assert "unknown op 'sepp'" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()


# --- odd run files and arguments (each once a crash or a wrong page) --------------------------------

def _md_html(text: str) -> str:
    """The Markdown as CommonMark renders it (tables on, as on GitHub)."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable("table").render(text)


def test_huge_integer_in_metrics_is_a_note(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=3, metrics={"wall_seconds": 10 ** 400})  # json.dump writes it
    assert json.loads((run / "metrics.json").read_text())["wall_seconds"] == 10 ** 400
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    assert "metrics.json: wall_seconds is 1000" in text and "…, not a number" in text
    assert cards(text)["wall time"][0] == "30.6 s"  # from history.csv: 10.1 + 10.2 + 10.3


@pytest.mark.parametrize("values", [(0.0, 5e-324), (1e308, -1e308), (1.7e308, 1.7e308), (1e-20, 2e-20),
                                    (1e10, 1e10 + 1e-5), (-5e-324, 5e-324)])
def test_charts_take_any_finite_values(values):
    svg = str(charts.line_chart([charts.Series("loss", [(1, values[0]), (2, values[1])])], title="Loss"))
    ET.fromstring(svg)
    assert not re.search(r"nan|inf", svg, re.I)
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.-]+)"', svg)]
    assert len(ys) == 2 and all(40 <= y <= 250 - 44 for y in ys)  # inside the plot area
    ticks = charts.nice_ticks(min(values), max(values))
    assert all(math.isfinite(t) for t in ticks) and len(ticks) <= 20


def test_nice_ticks_by_hand():
    assert charts.nice_ticks(0.1, 0.7) == [0.0, 0.2, 0.4, 0.6, 0.8]
    assert charts.nice_ticks(-1e308, 1e308) == [-1e308, -5e307, 0.0, 5e307, 1e308]  # hi - lo overflows
    assert charts.nice_ticks(1e-20, 2e-20) == [1e-20, 1.25e-20, 1.5e-20, 1.75e-20, 2e-20]  # was 1000 zeros
    assert charts.nice_ticks(0.0, 5e-324) == [0.0, 5e-324]  # the step underflows


def test_run_with_extreme_losses_renders(tmp_path):
    header = "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
    for name, a, b in (("flat", "0", "5e-324"), ("wide", "1e308", "-1e308")):
        run, _ = write_run(tmp_path / name, history=header + f"1,0.01,{a},0.5,{a},0.5,1\n2,0.01,{b},0.6,{b},0.6,1\n")
        text = report(tmp_path, "specs/best.arch", run=run, name=name)
        check_html(text)
        loss = re.search(r'<svg[^>]*aria-label="Loss".*?</svg>', text, re.S).group(0)
        assert not re.search(r"nan|inf", loss, re.I) and loss.count("<circle") == 4


def test_wall_time_past_float_range(tmp_path):
    header = "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
    run, _ = write_run(tmp_path / "run", history=header + "1,0.01,2,0.5,2,0.5,1e308\n2,0.01,1,0.6,1,0.6,1e308\n")
    (run / "metrics.json").unlink()
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    assert cards(text)["wall time"][0] == "—"
    assert "the seconds add up to more than a number can hold" in text


def test_history_ahead_of_metrics_takes_the_history_row(tmp_path):
    """A kill between the history.csv and metrics.json writes: history has epoch 4, metrics covers 3."""
    run, _ = write_run(tmp_path / "run", epochs=4, planned=10, metrics={
        "epochs_done": 3, "final_val_accuracy": 0.65, "best_val_accuracy": 0.65, "best_epoch": 3})
    text = report(tmp_path, "specs/best.arch", run=run)
    c = cards(text)
    epoch4 = 0.8 - 0.45 / 4 + 0.05  # write_run's val_accuracy at epoch 4, also the best
    assert c["final val accuracy (test split)"] == (f"{epoch4 * 100:.2f} %", "epoch 4")
    assert c["best val accuracy (test split)"] == (f"{epoch4 * 100:.2f} %", "epoch 4")
    assert "metrics.json covers 3 epochs, history.csv 4; the best and final accuracy are from history.csv" in text


def test_history_behind_metrics_keeps_value_and_epoch_together(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=3, planned=10, metrics={"epochs_done": 4, "final_val_accuracy": 0.7})
    c = cards(report(tmp_path, "specs/best.arch", run=run))
    assert c["final val accuracy (test split)"] == ("70.00 %", "epoch 4")


def test_complete_only_with_evidence(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=6)
    (run / "metrics.json").unlink()
    text = report(tmp_path, "specs/best.arch", run=run, name="unknown")
    assert cards(text)["epochs"] == ("6", "plan unknown")
    assert "whether it is complete is unknown" in text
    # the run's own spec.arch plans 50 epochs (specs/best.arch says `epochs 50`)
    shutil.copy(ROOT / "specs" / "best.arch", run / "spec.arch")
    text = report(tmp_path, "specs/best.arch", run=run, name="spec")
    assert cards(text)["epochs"] == ("6 of 50", "incomplete")
    assert "incomplete run: 6 of 50 planned epochs" in text and "those of the run's spec.arch (50)" in \
        html.unescape(text)
    # resolved.json has the command line's --epochs applied
    (run / "resolved.json").write_text(json.dumps({"train": {"epochs": 6}}))
    assert cards(report(tmp_path, "specs/best.arch", run=run, name="resolved"))["epochs"] == ("6 of 6", "complete")


@pytest.mark.parametrize("history", [bytes(range(256)) * 3, b"a,b,c\n1,2,3\n4,5,6\n"], ids=["bytes", "abc"])
def test_foreign_history_rows_are_not_epochs(tmp_path, history):
    run, _ = write_run(tmp_path / "run", epochs=3, planned=50)
    (run / "history.csv").write_bytes(history)
    text = report(tmp_path, "specs/best.arch", run=run)
    check_html(text)
    assert cards(text)["epochs"] == ("0 of 50", "incomplete")
    assert "history.csv has no epochs yet" in text and "are not read as epochs" in text


def test_duplicate_epochs_are_counted_once(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=5)
    lines = (run / "history.csv").read_text().splitlines()
    (run / "history.csv").write_text("\n".join(lines[:4] + [lines[3].replace(",10.3", ",99.0")] + lines[4:]) + "\n")
    text = report(tmp_path, "specs/best.arch", run=run)
    assert cards(text)["epochs"] == ("5 of 5", "complete")
    assert "history.csv has more than one row for epoch 3; each epoch is counted once, from its last row" in text
    assert re.findall(r"<td[^>]*>99\.0</td>", text)  # the later row of epoch 3


def test_byte_order_mark_in_history_is_ignored(tmp_path):
    run, _ = write_run(tmp_path / "run", epochs=3)
    (run / "history.csv").write_bytes(b"\xef\xbb\xbf" + (run / "history.csv").read_bytes())
    text = report(tmp_path, "specs/best.arch", run=run)
    assert "\ufeff" not in text and "does not show" not in text and "has no epoch" not in text
    assert cards(text)["epochs"] == ("3 of 3", "complete")


@pytest.mark.parametrize("comment", ["## My model", "# - a bullet", "# 1. first", "# ---", "# > quoted",
                                     "# + plus", "# 3) third"])
def test_markdown_description_stays_text(tmp_path, comment):
    spec = tmp_path / "d.arch"
    spec.write_text(f"{comment}\nmodel d\ninput 8x8x1\nclasses 2\nconv 3x3 2\ngap\nsoftmax\n")
    rendered = _md_html(report(tmp_path, str(spec), "md"))
    quote = re.search(r"<blockquote>\s*(.*?)\s*</blockquote>", rendered, re.S).group(1)
    assert quote == f"<p>{html.escape(comment[1:].strip(), quote=False)}</p>"
    assert html.escape(comment[1:].strip()) in report(tmp_path, str(spec), name="d")  # HTML: escaped as is


def test_markdown_run_path_outside_a_table_has_no_backslash(tmp_path):
    run, _ = write_run(tmp_path / "a|b", epochs=2)
    text = report(tmp_path, "specs/best.arch", "md", run=run)
    assert f"<p>run <code>{html.escape(str(run), quote=False)}</code>" in _md_html(text)
    assert f"| file | {safe_text.md_code('specs/best.arch')} |" in text
    assert safe_text.md_code("a|b", in_table=False) == "`a|b`" and safe_text.md_code("a|b") == "`a\\|b`"


def test_markdown_under_a_file_has_a_hint(tmp_path, capsys):
    (tmp_path / "best.arch").write_text("x")
    for ext in ("md", "html"):
        assert main(["report", "specs/best.arch", "-o", str(tmp_path / "best.arch" / f"x.{ext}")]) == 1
        err = capsys.readouterr().err
        assert "error[E501]: cannot " in err and "Not a directory" in err and "\n  hint: " in err, err
    assert (tmp_path / "best.arch").read_text() == "x"


def test_output_name_that_is_only_an_extension(tmp_path, capsys):
    assert main(["report", "specs/best.arch", "-o", str(tmp_path / ".html")]) == 2
    err = capsys.readouterr().err
    assert "error[E640]: cannot tell the report format of" in err and "nothing before the dot" in err
    assert "hint: write e.g. -o report.html" in err and ".html.html" not in err
    assert list(tmp_path.iterdir()) == []


def test_empty_run_dir_argument(tmp_path, capsys):
    out = tmp_path / "x.html"
    assert main(["report", "specs/best.arch", "", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "error[E540]: the run directory is given as an empty name" in err and "hint: " in err
    assert not out.exists()


def test_markdown_numbers_mid_line_and_in_cells_have_no_backslash(tmp_path):
    # `0.5` at a line's start would be escaped (`0\.5`, or it could start a list); in a table cell
    # or after `**` mid-line no block can start, so the source keeps the number as written
    run, _ = write_run(tmp_path / "run", epochs=2)
    text = report(tmp_path, "specs/record_10_epochs.arch", "md", run=run)
    assert "initial lr **0.01**" in text
    assert "| 16x16x64 | 10 | 2 | 0.5 | 0 | 0 |" in text  # the maxpool's start
    assert "\\." not in text
    rendered = _md_html(text)
    assert "initial lr <strong>0.01</strong>" in rendered and '<td style="text-align:right">0.5</td>' in rendered
