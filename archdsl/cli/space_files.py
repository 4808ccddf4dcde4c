"""`archdsl space --write DIR`: each feasible variant of a design space as a concrete spec file."""
from __future__ import annotations

import os
from pathlib import Path

from ..analysis.space import SpaceAnalysis
from ..errors import UsageError
from ..fileio import atomic_write_text, check_target
from ..language.choices import concrete_text


def variant_file_name(spec_path: str, index: int, total: int) -> str:
    """`space-07.arch`: the spec's stem and the variant's number in the table, as wide as the largest."""
    return f"{Path(spec_path).stem}-{index:0{len(str(total))}d}.arch"


def write_variants(space: SpaceAnalysis, spec_path: str, folder: str) -> list[Path]:
    """Write every feasible variant into `folder` (made if missing, its parent must exist); nothing is
    written when any of the files exists already."""
    target = Path(folder)
    if target.exists() and not target.is_dir():
        raise UsageError(f"--write {folder}: not a folder", hint="give a folder to write the variants into",
                         code="E602")
    if not target.exists():
        check_target(target, overwrite=False)  # its parent exists and is writable
        os.mkdir(target)
    total = len(space.variants)
    paths = [target / variant_file_name(spec_path, v.index, total) for v in space.feasible]
    existing = [p for p in paths if p.exists()]
    if existing:
        raise UsageError(f"{existing[0]} already exists; archdsl does not overwrite it"
                         + (f" (nor {len(existing) - 1} more)" if len(existing) > 1 else ""),
                         hint="write into an empty folder, or remove the files first", code="E603")
    for path, v in zip(paths, space.feasible):
        atomic_write_text(path, concrete_text(space.spec, v.picks), overwrite=False)
    return paths
