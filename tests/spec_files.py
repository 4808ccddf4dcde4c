"""The specs the differential tests run on: every .arch of specs/ and examples/.

All of them must resolve: the specs wrong on purpose live in tests/bad/, which is not searched.
"""
from pathlib import Path

import archdsl

ROOT = Path(__file__).resolve().parent.parent


def spec_paths():
    """Every .arch of specs/ and examples/, found when the tests are collected."""
    return sorted(p.relative_to(ROOT).as_posix() for d in ("specs", "examples") for p in (ROOT / d).glob("*.arch"))


def load_spec(path):
    """The IR of `path` (an error in any of these specs fails the test)."""
    return archdsl.load(path)
