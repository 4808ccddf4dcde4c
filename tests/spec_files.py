"""The specs the differential tests run on: every .arch of specs/ and examples/."""
from pathlib import Path

import pytest

import archdsl
from archdsl.errors import ArchError

ROOT = Path(__file__).resolve().parent.parent


def spec_paths():
    """Every .arch of specs/ and examples/, found when the tests are collected."""
    return sorted(p.relative_to(ROOT).as_posix() for d in ("specs", "examples") for p in (ROOT / d).glob("*.arch"))


def load_spec(path):
    """The IR of `path`; a `bad_*.arch` that fails to resolve on purpose is skipped."""
    try:
        return archdsl.load(path)
    except ArchError:
        if Path(path).name.startswith("bad_"):
            pytest.skip(f"{path} is wrong on purpose")
        raise
