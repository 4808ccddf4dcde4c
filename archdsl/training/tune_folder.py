"""The tune folder, `<out>/<study>/`, and what `archdsl tune` writes in it:

    tune.json          what the folder is the tune of: the study, the spec (its name and sha256), the storage
    study.db           the study (the default storage: a SQLite file; with --storage the study is there)
    trials/<number>/   one ordinary run directory a trained trial (its spec.arch: the variant's concrete text);
                       a trial of a variant that failed before starts as a copy of the failed run that got
                       furthest, and continues it
    leaderboard.json   the trials, best first (rewritten after every trial)
    best.arch          the best variant's concrete text (rewritten when a tune ends)

A folder that holds another spec's or study's tune, or anything that is not a tune, is refused (E686): its
trials would be mixed up with this tune's. Nothing is written outside the folder.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .. import runs
from ..errors import ArchError, UsageError

FORMAT = "archdsl-tune/1"
MANIFEST = "tune.json"


def check_folder(folder: Path, manifest: dict, *, must_exist: bool = False) -> None:
    """E686 unless `folder` is missing, empty, or the tune `manifest` describes (same study, spec, storage);
    with `must_exist`, E687 unless it holds a tune. Creates nothing: a study that cannot be opened leaves no
    folder behind."""
    path = folder / MANIFEST
    if path.is_file():
        _compare(folder, _read(path), manifest)
        return
    # study.db alone: the default storage was made, and the worker stopped before it wrote tune.json
    entries = sorted(p.name for p in folder.iterdir() if p.name != "study.db") if folder.is_dir() else []
    if entries:
        shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
        raise UsageError(f"{folder} is not a tune folder (it holds {shown}, and no {MANIFEST})", code="E686",
                         hint="give another --out or --study: a tune writes only into its own folder")
    if must_exist:
        raise UsageError(f"no tune in {folder}", code="E687",
                         hint="start it with `archdsl tune FILE` (without --resume; check --out and --study)")


def claim_folder(folder: Path, manifest: dict) -> None:
    """Write the folder's tune.json, unless another worker has (then it must describe the same tune)."""
    path = folder / MANIFEST
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        _compare(folder, _read(path), manifest)
        return
    except OSError as exc:
        raise UsageError(f"cannot write the tune folder {folder}: {exc.strerror}", code="E686",
                         hint="choose a writable folder with --out") from None
    with os.fdopen(fd, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}  # a partly written file of a worker starting at this moment, or a damaged one: compared as empty


def _compare(folder: Path, kept: dict, manifest: dict) -> None:
    for key, what in (("format", "not a tune folder of this archdsl"), ("study", "the tune of study"),
                      ("spec_sha256", "a tune of another spec (or of this spec before an edit)"),
                      ("storage", "a tune kept in another storage")):
        if kept.get(key) != manifest[key]:
            said = f"{what} '{kept.get(key)}'" if key == "study" else what
            raise UsageError(f"{folder} holds {said}", code="E686",
                             hint="give another --out or --study, or the spec and --storage it was started with")


def manifest(study: str, spec_file: str, spec_sha256: str, storage: str) -> dict:
    return {"format": FORMAT, "study": study, "spec": spec_file, "spec_sha256": spec_sha256, "storage": storage}


def trial_run(folder: Path, number: int) -> runs.RunDir:
    """A new run directory for trial `number`, trials/<number>; never an existing one."""
    path = folder / "trials" / str(number)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir()
    except FileExistsError:
        raise UsageError(f"{path} exists already: the folder holds trials of another study", code="E686",
                         hint="give another --out or --study") from None
    run = runs.RunDir(path)
    run.checkpoint.mkdir()
    return run


# what a retry must share with the failed run it continues, besides the resolved model and the data
CONTINUED_SETTINGS = ("data", "data_dir", "limit", "test_limit", "seed", "recipe", "set")


def continue_failed(folder: Path, failed: list[int], run: runs.RunDir, model_json: str, settings: dict,
                    fingerprint: str) -> tuple[int, dict] | None:
    """Copy into `run`, the new and empty run directory of a trial, the run of the one of the `failed` trials (the
    failed trials of its variant) that got furthest and that it can continue: a checkpoint of at least one
    epoch, of the same resolved model (variant, --epochs, held-out split), settings and data. (its number, the
    state copied); None when there is none, nothing copied (the trial trains from the start)."""
    ranked = sorted(((_epoch_of(folder / "trials" / str(n)), n) for n in failed), reverse=True)
    for epoch, number in ranked:
        if epoch < 1:
            break
        state = _copy_if_continued(folder / "trials" / str(number), run, model_json, settings, fingerprint)
        if state is not None:
            return number, state
    return None


def _epoch_of(path: Path) -> int:
    """The epoch of a run's newest state, read without its lock and checksums (to rank; checked when copied,
    links refused there)."""
    try:
        return runs.load_state(runs.open_run(path), check_model=False)["epoch"]
    except (ArchError, OSError, UnicodeDecodeError):
        return 0


def _copy_if_continued(path: Path, run: runs.RunDir, model_json: str, settings: dict,
                       fingerprint: str) -> dict | None:
    """The failed run at `path` copied into `run` if `run` can continue it (see continue_failed): its state, or
    None. The failed run is read under its lock (a worker still writing it is not copied from) and kept as it
    is; only its regular files are copied, never what a link names, and never a run reached through a link."""
    source = runs.RunDir(path)
    if source.path.is_symlink():  # a run is read only inside the tune folder
        return None
    try:
        with runs.RunLock(runs.open_run(source.path)):
            state = runs.load_state(source)
            kept = {key: state["settings"].get(key) for key in CONTINUED_SETTINGS}
            if (state["epoch"] < 1 or state["data"].get("fingerprint") != fingerprint
                    or kept != {key: settings.get(key) for key in CONTINUED_SETTINGS}
                    or source.resolved.read_text(encoding="utf-8") != model_json):
                return None
            _copy_files(source.path, run.path)
    except (ArchError, OSError, UnicodeDecodeError):  # damaged, missing, or being written
        shutil.rmtree(run.path, ignore_errors=True)  # what was copied before a failure: the trial starts empty
        run.checkpoint.mkdir(parents=True, exist_ok=True)
        return None
    runs.write_json(run.metrics, runs.summarize(state, run))  # the copied one names the failed run's folder
    return state


def _copy_files(source: Path, target: Path) -> None:
    for here, folders, files in os.walk(source):  # links to folders are not walked into
        into = target / Path(here).relative_to(source)
        into.mkdir(exist_ok=True)
        for name in files:
            if not os.path.islink(os.path.join(here, name)):
                shutil.copy2(os.path.join(here, name), into / name)


def write_leaderboard(folder: Path, board: dict) -> Path:
    path = folder / "leaderboard.json"
    runs.write_json(path, board)
    return path


def write_best(folder: Path, text: str) -> Path:
    path = folder / "best.arch"
    runs.write_bytes(path, text.encode("utf-8"))
    return path
