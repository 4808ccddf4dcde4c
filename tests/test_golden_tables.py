"""Golden RF tables: `archdsl rf` of every spec and example, compared with a file checked by eye.

Regenerate after an intended change with `ARCHDSL_UPDATE_GOLDEN=1 pytest tests/test_golden_tables.py`
and read the diff before committing it.
"""
import os
from pathlib import Path

import pytest

from archdsl.cli import main

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
SPECS = sorted(p.relative_to(ROOT) for d in ("specs", "examples") for p in (ROOT / d).glob("*.arch"))


@pytest.mark.parametrize("spec", SPECS, ids=str)
@pytest.mark.parametrize("fmt", ["table", "markdown"])
def test_rf_table_matches_golden(spec, fmt, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    status = main(["rf", str(spec), "--format", fmt])
    out = capsys.readouterr()
    text = f"exit {status}\n{out.out}" + (f"--- stderr\n{out.err}" if out.err else "")
    golden = GOLDEN / f"{spec.parent.name}_{spec.stem}.{ 'txt' if fmt == 'table' else 'md'}"
    if os.environ.get("ARCHDSL_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert golden.exists(), f"no golden file {golden}: run with ARCHDSL_UPDATE_GOLDEN=1 and check it by eye"
    assert text == golden.read_text()


def test_every_spec_has_a_golden_table():
    names = {f"{s.parent.name}_{s.stem}.txt" for s in SPECS}
    assert names <= {p.name for p in GOLDEN.glob("*.txt")}
