"""`report`, `draw`, `eval` and `export` on hostile inputs (issue 27).

- long histories: the curves cost time linear in the epochs and draw a bounded number of points
  (downsampled, extremes kept, and the page says so); history.csv is read up to a stated limit
  and the page says when rows were left out. Checked by counting work and bounding the input,
  or under a CPU and memory limit in a subprocess: never by timing.
- a planted `<name>_files` link is refused, as the output file itself is;
- control characters in paths, class names and file names reach the terminal escaped.
"""
from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from archdsl import safe_text
from archdsl.cli import main
from archdsl.render import charts
from archdsl.runs import reader as run_reader

ROOT = Path(__file__).resolve().parent.parent
HEADER = "epoch,lr,loss,accuracy,val_loss,val_accuracy,seconds\n"
NS = "{http://www.w3.org/2000/svg}"
HOSTILE = "x\ny\x1b[2Jz"  # a newline, and the escape sequence that clears the screen
ESCAPED = "x\\ny\\x1b[2Jz"


def _row(e: int, best: int | None = None) -> str:
    val = 0.9 if e == best else 0.5 + 0.3 * (e % 97) / 97
    return f"{e},{0.01 / (1 + e / 1000)!r},{2.0 / e ** 0.3!r},{0.6 + (e % 89) / 890!r},{2.1 / e ** 0.3!r},{val!r},10.5\n"


def write_run(folder: Path, epochs: int, best: int | None = None, metrics: dict | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "history.csv").write_text(HEADER + "".join(_row(e, best) for e in range(1, epochs + 1)))
    m = {"spec": "best", "complete": True, "epochs_done": epochs, "epochs": epochs, "best_epoch": best,
         "best_val_accuracy": 0.9 if best else None, "final_val_accuracy": 0.6, "wall_seconds": 10.5 * epochs}
    m.update(metrics or {})
    (folder / "metrics.json").write_text(json.dumps(m))
    return folder


def _charts(text: str) -> dict[str, ET.Element]:
    return {m.group(1): ET.fromstring(m.group(0))
            for m in re.finditer(r'<svg[^>]*aria-label="([^"]*)".*?</svg>', text, re.S)}


def _path_points(svg: ET.Element) -> list[int]:
    return [len(re.findall(r"[ML]", p.get("d"))) for p in svg.iter(f"{NS}path")]


# --- 4. long histories: linear work, bounded pictures, bounded reading ------------------------

def test_chart_work_is_linear_in_the_points(monkeypatch):
    """Each point's finiteness is tested a few times, not once per other point (3,000 points were
    9 million tests)."""
    calls = 0
    real = charts._finite

    def counting(y):
        nonlocal calls
        calls += 1
        return real(y)

    monkeypatch.setattr(charts, "_finite", counting)
    n = 3000
    charts.line_chart([charts.Series("train", [(e, 1 / e) for e in range(1, n + 1)]),
                       charts.Series("val", [(e, 2 / e) for e in range(1, n + 1)])], title="Loss")
    assert calls <= 20 * n


def test_long_curve_is_downsampled_keeping_extremes_and_gaps():
    n = 5000
    points = [(e, 0.5 + 0.1 * ((e * 37) % 101) / 101) for e in range(1, n + 1)]
    points[3120] = (3121, 0.99)  # the highest point, alone in the middle of a stretch
    points[4010] = (4011, 0.01)  # the lowest
    for i in range(2500, 2510):  # a gap (a diverged stretch)
        points[i] = (i + 1, None)
    svg_text = str(charts.line_chart([charts.Series("val", points)], title="Accuracy",
                                     markers=[charts.Marker(3121, "best 3121")]))
    svg = ET.fromstring(svg_text)
    kept = _path_points(svg)
    assert len(kept) >= 2, "the gap still breaks the line"
    assert sum(kept) <= charts.MAX_POINTS
    tips = [t.text for t in svg.iter(f"{NS}title")]
    assert len(tips) <= charts.MAX_POINTS
    assert "val, epoch 3121: 0.99" in tips and "val, epoch 4011: 0.01" in tips  # both extremes
    assert f"val, epoch 1: {points[0][1]:.6g}" in tips and f"val, epoch {n}: {points[-1][1]:.6g}" in tips  # ends
    assert "downsampled from 5,000 epochs" in svg_text
    # a short curve is drawn as it is, and says nothing
    short = str(charts.line_chart([charts.Series("val", points[:100])], title="Accuracy"))
    assert "downsampled" not in short and short.count("<circle") == 100


def test_downsample_by_hand():
    ys = [5, 1, 9, 4, None, 3, 2, 8] + [6, 6, 0.5, None, None, 7, 6, 6]
    pts = [(e, y) for e, y in enumerate(ys, start=1)]
    assert charts.downsample(pts, 16) == pts  # short: as is
    # 2 buckets of 8: each keeps its first, lowest, highest and last finite point, and its first and last gap
    assert charts.downsample(pts, 12) == [(1, 5), (2, 1), (3, 9), (5, None), (8, 8),
                                          (9, 6), (11, 0.5), (12, None), (13, None), (14, 7), (16, 6)]
    long = [(e, float(e % 10)) for e in range(1, 1001)]
    out = charts.downsample(long, 60)
    assert len(out) <= 60 and out[0] == (1, 1.0) and out[-1] == (1000, 0.0)
    assert [x for x, _ in out] == sorted(x for x, _ in out)  # in order
    assert {y for _, y in out} >= {0.0, 9.0}


class _CountingFile:
    """A file whose reads are counted (in bytes or characters, whichever it returns)."""

    def __init__(self, f):
        self.f, self.count = f, 0

    def _seen(self, data):
        self.count += len(data)
        return data

    def read(self, *a):
        return self._seen(self.f.read(*a))

    def readline(self, *a):
        return self._seen(self.f.readline(*a))

    def readinto(self, b):
        n = self.f.readinto(b)
        self.count += n or 0
        return n

    def __iter__(self):
        return self

    def __next__(self):
        return self._seen(next(self.f))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_history_is_read_up_to_a_limit(tmp_path, monkeypatch):
    limit = 64 * 1024
    monkeypatch.setattr(run_reader, "MAX_HISTORY_BYTES", limit, raising=False)
    opened: list[_CountingFile] = []

    def counting_open(path, *a, **kw):
        f = _CountingFile(open(path, *a, **kw))
        if Path(path).name == "history.csv":
            opened.append(f)
        return f

    monkeypatch.setattr(run_reader, "open", counting_open, raising=False)
    run = write_run(tmp_path / "run", epochs=20_000)  # about 1.5 MB
    size = (run / "history.csv").stat().st_size
    assert size > 20 * limit
    r = run_reader.read_run(str(run))
    assert opened and sum(f.count for f in opened) <= limit + 1
    last = r.history[-1]["epoch"]
    assert 100 < len(r.history) < 20_000 and [h["epoch"] for h in r.history] == list(range(1, last + 1))
    assert all(v is not None for v in r.history[-1].values())  # whole lines only: the last row is complete
    note = next(n for n in r.notes if "left out" in n)
    assert "history.csv" in note and f"to epoch {last:,}" in note


def test_history_rows_are_read_up_to_a_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(run_reader, "MAX_HISTORY_ROWS", 50, raising=False)
    run = write_run(tmp_path / "run", epochs=200, best=150, metrics={"final_val_accuracy": 0.61})
    text = (tmp_path / "r.html")
    assert main(["report", "specs/best.arch", str(run), "-o", str(text)]) == 0
    page = html.unescape(text.read_text())
    assert "history (50 epochs)" in page
    assert re.search(r"history\.csv is longer than a report reads .*only its first 50 rows were read "
                     r"\(to epoch 50\); the rest is left out", page)
    # the summary is metrics.json's, not the 50 rows': 200 of 200 epochs, complete, best at 150
    assert "incomplete" not in page
    assert re.search(r'<div class="label">epochs</div><div class="value">200 of 200</div>\s*'
                     r'<div class="sub">complete</div>', page)
    assert re.search(r'best val accuracy \(test split\)</div><div class="value">90.00 %</div>\s*<div class="sub">epoch 150', page)
    assert re.search(r'final val accuracy \(test split\)</div><div class="value">61.00 %</div>\s*<div class="sub">epoch 200', page)
    # without metrics.json, what is known: at least 50 epochs; no final accuracy or wall time from a part
    (run / "metrics.json").unlink()
    text = tmp_path / "r2.html"
    assert main(["report", "specs/best.arch", str(run), "-o", str(text)]) == 0
    page = html.unescape(text.read_text())
    assert re.search(r'<div class="label">epochs</div><div class="value">50\+</div>', page)
    assert re.search(r'final val accuracy \(test split\)</div><div class="value">—</div>', page)
    assert re.search(r'wall time</div><div class="value">—</div>', page)
    assert "epochs read" in page  # the best of what was read, said so


def _limited(args: list[str], cpu_seconds: int, memory: int) -> subprocess.CompletedProcess:
    """`archdsl ARGS` in a child under a CPU-time and an address-space limit (not a timer: a loaded
    machine does not make it fail)."""
    import resource

    def limits():
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "archdsl", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, preexec_fn=limits, stdin=subprocess.DEVNULL)


def test_100k_epochs_and_a_huge_history_render_within_limits(tmp_path):
    """100,000 epochs, then 4 GiB more of history.csv (sparse: no disk used): the page is made under
    60 s of CPU and 1.5 GiB of address space, each curve downsampled, the best epoch still on it,
    and the page says what was downsampled and what was not read. (Before: 10,000 epochs took
    213 s; a 100 MB history ran 17 minutes at 3.6 GB.)"""
    n, best = 100_000, 77_777
    run = write_run(tmp_path / "run", epochs=n, best=best)
    with open(run / "history.csv", "r+b") as f:
        f.truncate(f.seek(0, os.SEEK_END) + 4 * 2 ** 30)
    out = tmp_path / "r.html"
    proc = _limited(["report", "specs/best.arch", str(run), "-o", str(out)], cpu_seconds=60, memory=3 * 2 ** 29)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = out.read_text(encoding="utf-8")
    found = _charts(text)
    assert set(found) >= {"Loss", "Accuracy", "Learning rate"}
    for name in ("Loss", "Accuracy", "Learning rate"):
        svg = found[name]
        kept = _path_points(svg)
        assert kept and all(k <= charts.MAX_POINTS for k in kept), (name, kept)
        assert len(list(svg.iter(f"{NS}circle"))) <= charts.MAX_POINTS * len(kept)
        assert any("downsampled from 100,000 epochs" in (t.text or "") for t in svg.iter(f"{NS}text"))
    tips = [t.text for t in found["Accuracy"].iter(f"{NS}title")]
    assert f"val (test split), epoch {best}: 90.00 %" in tips  # the extreme is kept
    page = html.unescape(text)
    assert "the curves are downsampled from 100,000 epochs" in page
    assert "history.csv is longer than a report reads" in page and "the rest is left out" in page


# --- 9. a planted <name>_files link ------------------------------------------------------------

@pytest.mark.parametrize("dangling", [False, True], ids=["to-a-folder", "dangling"])
def test_pictures_folder_that_is_a_link_is_refused(tmp_path, capsys, dangling):
    run = write_run(tmp_path / "run", epochs=3)  # a run: the curves are files with or without `dot`
    elsewhere = tmp_path / "elsewhere"
    if not dangling:
        elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "report_files").symlink_to(elsewhere, target_is_directory=True)
    assert main(["report", "specs/best.arch", str(run), "-o", str(out / "report.md")]) == 2
    err = capsys.readouterr().err
    assert f"error[E641]: {out / 'report_files'} is a symbolic link; archdsl does not write through it" in err
    assert "hint: choose another report name, or remove the link first" in err
    assert not (out / "report.md").exists() and (out / "report_files").is_symlink()
    assert not elsewhere.exists() if dangling else list(elsewhere.iterdir()) == []
    # the output file itself, planted the same way, is refused too (fileio's check)
    (out / "r.md").symlink_to(tmp_path / "target.md")
    assert main(["report", "specs/best.arch", str(run), "-o", str(out / "r.md")]) == 2
    assert "error[E603]" in capsys.readouterr().err and not (tmp_path / "target.md").exists()


# --- 13. control characters reach the terminal escaped -----------------------------------------

def test_terminal_text_escapes_controls_only():
    assert safe_text.terminal_text(HOSTILE) == ESCAPED
    assert safe_text.terminal_text("a\tb\rc\x7f\u202ed\u2028é 模型 ok") == "a\\tb\\rc\\x7f\\u202ed\\u2028é 模型 ok"
    assert safe_text.terminal_text(Path("runs/a b")) == "runs/a b"
    assert safe_text.terminal_text("\udcff") == "\\udcff"  # an undecodable byte of a file name


def _assert_escaped(text: str) -> None:
    assert "\x1b" not in text and "\x1b[2J" not in text
    assert "y\x1b" not in text and "x\ny" not in text


def test_report_prints_names_escaped(tmp_path, capsys):
    folder = tmp_path / HOSTILE
    folder.mkdir()
    spec = folder / "s.arch"
    spec.write_text("model s\ninput 8x8x1\nclasses 2\nconv 3x3 2\ngap\nsoftmax\nassert params <= 1\n")
    out = tmp_path / f"r{HOSTILE}.html"
    assert main(["report", str(spec), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    _assert_escaped(captured.out + captured.err)
    assert f"wrote {tmp_path}/r{ESCAPED}.html" in captured.out
    assert f"1 assert of {tmp_path}/{ESCAPED}/s.arch does not hold" in captured.err
    # the messages of refusals name the file escaped too
    for bad in (tmp_path / f"r{HOSTILE}.pdf", tmp_path / f"r{HOSTILE}.md"):
        if bad.suffix == ".md":
            (tmp_path / f"r{HOSTILE}_files").write_text("x")
        assert main(["report", str(spec), "-o", str(bad)]) == 2
        err = capsys.readouterr().err
        _assert_escaped(err)
        assert ESCAPED in err


def test_draw_prints_names_escaped(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # short relative names: the drawing's first line is not clipped
    Path(HOSTILE).mkdir()
    spec = f"{HOSTILE}/s.arch"
    Path(spec).write_text("model s\ninput 8x8x1\nclasses 2\nconv 3x3 2\ngap\nsoftmax\n")
    assert main(["draw", spec]) == 0  # the terminal drawing names the file
    captured = capsys.readouterr()
    _assert_escaped(captured.out)
    assert f"({ESCAPED}/s.arch)" in captured.out
    assert main(["draw", spec, "-o", f"d{HOSTILE}.txt"]) == 0
    captured = capsys.readouterr()
    _assert_escaped(captured.out)
    assert f"wrote d{ESCAPED}.txt" in captured.out
    assert Path(f"d{HOSTILE}.txt").read_text().startswith("model s")  # the file is as it was
    assert main(["draw", spec, "-o", f"d{HOSTILE}.jpg"]) == 2
    err = capsys.readouterr().err
    _assert_escaped(err)
    assert f"d{ESCAPED}.jpg" in err


def test_eval_table_escapes_class_names():
    import numpy as np

    from archdsl.training.evaluate import format_confusion
    names = [HOSTILE, "cat", "\u202eevil"]
    text = format_confusion(np.array([[3, 1, 0], [0, 4, 0], [1, 0, 2]]), names)
    _assert_escaped(text)
    assert "\u202e" not in text
    lines = text.split("\n")
    assert len(lines) == 2 + 3 + 3 + 3  # blank, header, a line a class; blank, title, header, a line a class
    width = len(ESCAPED)
    assert lines[2] == f"{ESCAPED}  {3 / 4:8.4f}  {4:7,}"
    assert lines[3] == f"{'cat':<{width}}  {1.0:8.4f}  {4:7,}"
    evil = "\\u202eevil"
    assert lines[-1].startswith(f"{evil:<{width}}  ")
    rows = lines[-3:]
    assert len({len(r) for r in rows}) == 1  # the columns line up


@pytest.mark.tf
def test_eval_prints_class_and_path_names_escaped(tmp_path, capsys):
    import numpy as np
    from PIL import Image
    data = tmp_path / f"data{HOSTILE}"
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("test", 3)):
        for c, name in enumerate((HOSTILE, "plain")):
            folder = data / split / name
            folder.mkdir(parents=True)
            for i in range(n):
                image = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
                Image.fromarray(image).save(folder / f"{i}.png")
    spec = tmp_path / "s.arch"
    spec.write_text("model s\ninput 8x8x3\nclasses 2\nconv 3x3 2\ngap\nsoftmax\n")
    model = tmp_path / f"m{HOSTILE}.keras"
    assert main(["build", str(spec), "-o", str(model)]) == 0
    capsys.readouterr()
    assert main(["eval", str(model), "--data", str(data), "--data-dir", str(tmp_path / "cache")]) == 0
    out = capsys.readouterr().out
    _assert_escaped(out)
    assert f"m{ESCAPED}.keras: test accuracy" in out
    assert re.search(rf"^{re.escape(ESCAPED)} +\d\.\d{{4}} +3$", out, re.M)


def test_a_run_folder_name_in_an_error_cannot_drive_the_terminal(tmp_path, capsys, monkeypatch):
    """Every error is printed through one escaper (display.terminal_text), whatever module raised it."""
    monkeypatch.chdir(ROOT)
    run = tmp_path / "run\x1b[2J\nforged: ok"
    run.mkdir()
    assert main(["report", "specs/best.arch", str(run), "-o", str(tmp_path / "r.html")]) != 0
    err = capsys.readouterr().err
    assert "\x1b" not in err and "run\\x1b[2J\\nforged: ok" in err
    assert not any(line.startswith("forged") for line in err.splitlines())
