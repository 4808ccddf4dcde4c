"""Fixtures of the experiments' tests (`python -m pytest experiments/tests`; the product's suite, tests/, does not run them)."""
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]  # the repository
SCRIPTS = ROOT / "experiments" / "scripts"


@pytest.fixture(scope="session")
def load_script():
    """`load_script("make_results_doc")`: experiments/scripts/make_results_doc.py as a module (no package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    return load
