"""The one list of specs the tests iterate: every .arch of specs/ and examples/.

specs/ holds the product's models (the seed's two and the record holders); the experiments'
variants live in experiments/specs/ and are not searched, so each distinct model is built once.
All of them must resolve: the specs wrong on purpose live in tests/bad/, which is not searched.
Every test that runs on "every spec" takes its list from spec_paths() (or spec_texts()).
"""
from pathlib import Path

import archdsl

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIRS = ("specs", "examples")


def spec_paths() -> list[str]:
    """Every .arch of specs/ and examples/, relative to the repository ('specs/best.arch'), sorted."""
    return sorted(p.relative_to(ROOT).as_posix() for d in SPEC_DIRS for p in (ROOT / d).glob("*.arch"))


def spec_texts() -> list[str]:
    """The text of each file of spec_paths(), in the same order."""
    return [(ROOT / p).read_text() for p in spec_paths()]


def load_spec(path):
    """The IR of `path` (an error in any of these specs fails the test)."""
    return archdsl.load(path)
