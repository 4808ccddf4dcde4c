"""docs/warnings.md lists every warning code (archdsl/error_codes.py `WARNINGS`) with a real example, and is what
scripts/make_warnings_doc.py writes now (it runs each example). Regenerate with
`python scripts/make_warnings_doc.py` and read the diff."""
import re
from pathlib import Path

import pytest

from archdsl.error_codes import WARNINGS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "warnings.md"


@pytest.fixture(scope="module")
def generator(load_script):
    return load_script("make_warnings_doc")


def test_every_warning_code_is_documented_with_an_example_of_its_own(generator):
    doc = DOC.read_text(encoding="utf-8")
    assert re.findall(r"^### (W\d{3})$", doc, re.MULTILINE) == sorted(WARNINGS)
    for code in WARNINGS:
        section = doc.split(f"### {code}\n", 1)[1].split("\n### ", 1)[0]
        assert WARNINGS[code].meaning in section and f"**Fix:** {WARNINGS[code].fix}" in section
        assert f"[{code}]" in section, f"{code}'s example does not show it"


def test_doc_is_up_to_date(generator):
    assert DOC.read_text(encoding="utf-8") == generator.render(), \
        "docs/warnings.md is out of date: run python scripts/make_warnings_doc.py"


def test_the_fixed_example_is_silent(generator):
    doc = DOC.read_text(encoding="utf-8")
    fixed = doc.split("### W302\n", 1)[1].split("```console\n")[2].split("```")[0]
    assert "warning" not in fixed and fixed.endswith("(exit 0)\n")
