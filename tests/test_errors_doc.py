"""docs/errors.md lists every error code of archdsl/, and is what scripts/make_errors_doc.py writes now.

The codes, meanings and fixes are archdsl/error_codes.py's (tests/test_error_codes.py checks the raise
sites against it); the script adds the examples.

The generator runs every example (tests/bad cases, small specs, command lines in a scratch folder), so
a changed message, a new code without an entry, or a code whose example stopped producing it fails here.
Regenerate with `python scripts/make_errors_doc.py` and read the diff.
"""
import re
from pathlib import Path

import pytest

from archdsl import errors
from archdsl.error_codes import CODES

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def generator(load_script):
    return load_script("make_errors_doc")


@pytest.fixture(scope="module")
def rendered(generator):
    return generator.render()


def test_every_code_in_the_source_has_an_entry(generator):
    used = generator.source_codes()
    assert len(used) >= 80
    assert set(used) <= set(CODES), sorted(set(used) - set(CODES))
    # and no entry is left for a code the source no longer has (a reserved one is only a class's default)
    reserved = {code for code, entry in CODES.items() if entry.reserved}
    assert set(CODES) <= set(used) | reserved, sorted(set(CODES) - set(used) - reserved)


def test_examples_and_notes_are_of_registered_codes(generator):
    assert set(generator.EXAMPLES) <= set(CODES), sorted(set(generator.EXAMPLES) - set(CODES))
    assert set(generator.NOTES) <= set(CODES), sorted(set(generator.NOTES) - set(CODES))


def test_every_code_is_documented(generator):
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    headings = re.findall(r"^### (E\d{3})$", doc, re.M)
    assert headings == sorted(CODES)
    assert set(generator.source_codes()) <= set(headings)


def test_doc_is_up_to_date(rendered):
    doc = (ROOT / "docs" / "errors.md").read_text(encoding="utf-8")
    assert doc == rendered, "docs/errors.md is out of date: run python scripts/make_errors_doc.py"


def test_each_example_shows_its_own_code(generator, rendered):
    """An example must produce the code it illustrates (a changed check could make it produce another)."""
    sections = re.split(r"^### ", rendered, flags=re.M)[1:]
    for section in sections:
        code = section[:4]
        examples = re.findall(r"```console\n(.*?)```", section, re.S)
        if generator.EXAMPLES.get(code) or code in generator.bad_cases():
            assert examples, f"{code} has no example"
        else:
            assert code in generator.NOTES or CODES[code].fix == "—", f"{code} has neither an example nor a note"
        for example in examples:
            assert f"error[{code}]" in example, f"{code}'s example shows another error:\n{example}"
            assert "Traceback" not in example
            status = int(re.search(r"\(exit (\d)\)\n$", example).group(1))
            assert status == getattr(errors, CODES[code].error_class).exit_status, example
