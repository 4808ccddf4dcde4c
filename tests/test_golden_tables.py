"""Golden RF tables: `archdsl rf` of every spec and example, compared with a file checked by eye.

Regenerate after an intended change with `ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_golden_tables.py`
and read the diff before committing it.
"""
import os
from pathlib import Path

import pytest

from archdsl.cli import main
from spec_files import spec_paths

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SPECS = [Path(p) for p in spec_paths()]


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_rf_table_matches_golden(spec, fmt, capsys, monkeypatch):
    check_golden(spec, fmt, {"table": "txt", "markdown": "md"}[fmt], capsys, monkeypatch)


def check_golden(spec: Path, fmt: str, suffix: str, capsys, monkeypatch, *flags: str) -> None:
    """`archdsl rf SPEC --format FMT [FLAGS]` (exit status, output, warnings) is the golden file
    golden/DIR_SPEC[_FLAG].SUFFIX."""
    monkeypatch.chdir(ROOT)
    status = main(["rf", str(spec), "--format", fmt, *flags])
    out = capsys.readouterr()
    text = f"exit {status}\n{out.out}" + (f"--- stderr\n{out.err}" if out.err else "")
    golden = GOLDEN / f"{spec.parent.name}_{spec.stem}{''.join('_' + f.lstrip('-') for f in flags)}.{suffix}"
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with ARCHDSL_UPDATE_GOLDEN=1 and check it by eye"
    assert text == golden.read_text()


# JSON and CSV of a few specs that cover the cases: a head after gap/flatten (`global`, no rf/jump/start of its
# own: the table's rule), dense layers after flatten, a graph, an upsampling's fractional jump, odd strides
DATA_SPECS = [Path(p) for p in ("specs/best.arch", "examples/mnist_lenet.arch", "examples/resnet8.arch",
                                "examples/unet_tiny.arch", "examples/strided_odd.arch")]


@pytest.mark.parametrize("spec", DATA_SPECS, ids=str)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_rf_json_and_csv_match_golden(spec, fmt, capsys, monkeypatch):
    check_golden(spec, fmt, fmt, capsys, monkeypatch)


# `rf --memory`: a graph whose shortcut stays alive (ResNet-8) and a chain of separable convs (best)
@pytest.mark.parametrize("spec", [Path("examples/resnet8.arch"), Path("specs/best.arch")], ids=str)
@pytest.mark.parametrize("fmt, suffix", [("table", "txt"), ("markdown", "md"), ("json", "json"), ("csv", "csv")])
def test_rf_memory_matches_golden(spec, fmt, suffix, capsys, monkeypatch):
    check_golden(spec, fmt, suffix, capsys, monkeypatch, "--memory")


@pytest.mark.parametrize("spec", SPECS, ids=str)
def test_json_and_csv_say_global_where_the_table_does(spec, capsys, monkeypatch):
    """The three formats agree on which layers are global, and give those no rf, jump or start."""
    import csv
    import io
    import json
    monkeypatch.chdir(ROOT)
    tables = {}
    for fmt in ("table", "json", "csv"):
        main(["rf", str(spec), "--format", fmt])
        tables[fmt] = capsys.readouterr().out
    rows = [line.split() for line in tables["table"].split("\n\n")[1].splitlines()[2:]]
    in_table = [int(cells[0]) for cells in rows if "global" in cells]
    layers = json.loads(tables["json"])["layers"]
    assert [layer["index"] for layer in layers if layer["global"]] == in_table
    assert all(layer[k] is None for layer in layers if layer["global"] for k in ("rf", "jump", "start"))
    assert all(layer[k] is not None for layer in layers if not layer["global"] for k in ("rf", "jump", "start"))
    records = list(csv.DictReader(io.StringIO(tables["csv"])))
    assert [int(r["index"]) for r in records if r["rf_h"] == "global"] == in_table
    assert all(r["rf_w"] == "global" and r["jump_h"] == r["jump_w"] == r["start_h"] == r["start_w"] == ""
               for r in records if r["rf_h"] == "global")


def test_every_spec_has_a_golden_table():
    names = {f"{s.parent.name}_{s.stem}.txt" for s in SPECS}
    assert names <= {p.name for p in GOLDEN.glob("*.txt")}
