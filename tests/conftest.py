"""Shared fixtures: where the CIFAR-10 archive is, a dataset cache shared by a test session, scripts/ as modules."""
import importlib.util
import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# `archdsl train` turns oneDNN on unless TF_ENABLE_ONEDNN_OPTS is set (docs/performance.md). Tests
# compare runs made in this process with runs made by subprocesses, bit for bit, so every
# process of a test session must make the same choice: TensorFlow's own, unless the caller says.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def cifar10_archive() -> Path | None:
    """The shared CIFAR-10 image-folder archive: $ARCHDSL_CIFAR10_ARCHIVE or ../shared/data beside the repo."""
    candidates = [os.environ.get("ARCHDSL_CIFAR10_ARCHIVE"), ROOT.parent / "shared/data/cifar10-jpg.tar.gz"]
    for c in candidates:
        if c and Path(c).is_file():
            return Path(c)
    return None


@pytest.fixture(scope="session")
def cifar_archive() -> Path:
    path = cifar10_archive()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("CI must provide the CIFAR-10 archive (../shared/data/cifar10-jpg.tar.gz)")
        pytest.skip("the CIFAR-10 archive is not on this machine")
    return path


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """A dataset cache for the whole session, so the archive is decoded at most once."""
    return tmp_path_factory.mktemp("archdsl-data")


@pytest.fixture(autouse=True)
def _repo_root_cwd(monkeypatch):
    """Tests name specs relative to the repo root."""
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="session")
def load_script():
    """`load_script("make_errors_doc")`: scripts/make_errors_doc.py imported as a module (scripts/ is no package)."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
        return module
    return load
