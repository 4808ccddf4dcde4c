"""A run directory read for showing it (`archdsl report`): lenient where `runs` is strict.

    run = read_run("runs/best/20261125-220911")   # history, metrics, planned epochs, spec text
    run.notes                                      # what was missing or odd, said to the reader

Only history.csv is required (without it there is nothing to show). A missing or damaged
metrics.json, a cell that is not a number, a column the report does not know: each becomes
a note on the page and a gap in a curve, not a failure, so a run still training, cut
short or diverged (nan losses) can be looked at.
"""
from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import RunError
from . import HISTORY_COLUMNS, RUN_HINT, read_json

HISTORY = "history.csv"
METRICS = "metrics.json"
FRACTIONS = ("accuracy", "val_accuracy")  # columns that must be from 0 to 1
MAX_NOTES = 5  # of one kind (e.g. bad cells of history.csv); the rest are counted


@dataclass
class Run:
    path: Path
    history: list[dict]                  # one dict an epoch: HISTORY_COLUMNS -> number or None
    columns: list[str]                   # the columns history.csv has
    metrics: dict                        # metrics.json as read ({} if missing or unreadable)
    planned_epochs: int | None = None
    spec_text: str | None = None         # the run's spec.arch
    complete: bool | None = None         # as metrics.json (or the checkpoint's state) says; None: not said
    notes: list[str] = field(default_factory=list)  # what was missing or odd, for the reader


def read_run(path: str) -> Run:
    """A run directory's history and metrics. Only history.csv is required; the rest degrades."""
    if not str(path).strip():  # Path("") is "." and would silently read the current folder
        raise RunError('the run directory is given as an empty name ("")', hint=RUN_HINT, code="E540")
    root = Path(path).expanduser()
    if not root.exists():
        raise RunError(f"run directory {root} does not exist", hint=RUN_HINT, code="E540")
    if not root.is_dir():
        raise RunError(f"{root} is not a directory", hint=RUN_HINT, code="E540")
    history_path = root / HISTORY
    if not history_path.is_file():
        raise RunError(f"{root} has no {HISTORY}: it is not a training run, or no epoch has finished yet",
                       hint=RUN_HINT, code="E541")
    notes: list[str] = []
    history, columns = read_history(history_path, notes)
    metrics = _read_json(root / METRICS, notes, note_missing=True)
    state = _read_json(root / "checkpoint" / "state.json", [], note_missing=False)
    from ..language.parser import BOM

    spec_text = None
    try:
        spec_text = (root / "spec.arch").read_text(encoding="utf-8").removeprefix(BOM)  # a copy keeps the mark
    except (OSError, UnicodeDecodeError):
        pass
    planned = (positive_int_or_none(metrics.get("epochs")) or positive_int_or_none(state.get("epochs"))
               or _planned_by_spec(root, spec_text, notes))
    complete = next((d["complete"] for d in (metrics, state) if isinstance(d.get("complete"), bool)), None)
    return Run(root, history, columns, metrics, planned, spec_text, complete, notes)


def _planned_by_spec(root: Path, spec_text: str | None, notes: list[str]) -> int | None:
    """The epochs the run was set to train, from its resolved.json (command-line overrides applied) or,
    failing that, its spec.arch: when neither metrics.json nor the checkpoint's state says."""
    train = _read_json(root / "resolved.json", [], note_missing=False).get("train")
    planned = positive_int_or_none(train.get("epochs")) if isinstance(train, dict) else None
    if planned is None and spec_text is not None:
        from ..errors import ArchError
        from ..language.parser import parse
        from ..language.resolve import resolve
        try:
            planned = resolve(parse(spec_text, str(root / "spec.arch"))).train.epochs
        except (ArchError, ValueError):
            pass
        else:
            notes.append(f"the planned epochs are those of the run's spec.arch ({planned}); "
                         "an --epochs given to `archdsl train` would not show")
    if planned is None:
        notes.append("the run does not say how many epochs it planned, so whether it is complete is unknown")
    return planned


# how much of history.csv is read (about 150,000 epochs as `archdsl train` writes them): the rest is
# left out, and a note says so
MAX_HISTORY_BYTES = 16 * 2 ** 20
MAX_HISTORY_ROWS = 100_000


class History(list):
    """read_history's epochs; `cut` is True when history.csv went on past what was read."""
    cut = False


def read_history(path: Path, notes: list[str]) -> tuple[list[dict], list[str]]:
    """history.csv as numbers; a cell that is not a number becomes a gap and a note, not a failure.
    At most MAX_HISTORY_BYTES (whole lines) and MAX_HISTORY_ROWS rows are read: the rest of a longer
    file is left out, with a note, and the epochs returned (a `History`) have `cut` set."""
    import io
    import itertools
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_HISTORY_BYTES + 1)
        cut = len(data) > MAX_HISTORY_BYTES
        if cut:  # whole lines only
            data = data[:max(data.rfind(b"\n", 0, MAX_HISTORY_BYTES), data.rfind(b"\r", 0, MAX_HISTORY_BYTES)) + 1]
        # utf-8-sig: a byte-order mark (a file saved from Excel) is not part of the first column's name
        reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="replace"), newline=""))
        del data
        raw = list(itertools.islice(reader, MAX_HISTORY_ROWS + 1))
        columns = [c for c in (reader.fieldnames or []) if c is not None]
    except (OSError, csv.Error) as exc:
        raise RunError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}", hint=RUN_HINT,
                       code="E542") from None
    if len(raw) > MAX_HISTORY_ROWS:
        raw.pop()
        cut = True
    left_out = (f"{HISTORY} is longer than a report reads ({MAX_HISTORY_ROWS:,} rows or "
                f"{MAX_HISTORY_BYTES // 2 ** 20} MiB): only its first {len(raw):,} rows were read")
    if raw and not any(c in HISTORY_COLUMNS for c in columns):
        notes.append(f"{HISTORY} has none of the columns {', '.join(HISTORY_COLUMNS)}: "
                     f"its {len(raw)} row{'s' if len(raw) > 1 else ''} are not read as epochs")
        if cut:
            notes.append(f"{left_out}; the rest is left out")
        return [], columns
    unknown = [c for c in columns if c not in HISTORY_COLUMNS]
    if unknown:
        notes.append(f"{HISTORY} has columns this report does not show: {clip(', '.join(unknown), 200)}")
    missing = [c for c in HISTORY_COLUMNS if c not in columns]
    if missing and raw:
        notes.append(f"{HISTORY} has no {', '.join(missing)} column{'s' if len(missing) > 1 else ''}")
    bad, empty, twice, not_fractions = [], 0, [], []
    by_epoch: dict[int, dict] = {}
    for n, r in enumerate(raw, start=1):
        row = {}
        for c in HISTORY_COLUMNS:
            text = (r.get(c) or "").strip()
            value = _parse_number(text)
            if text and value is None:
                bad.append(f"line {n + 1} {c} {clip(text)!r}")
            elif value is not None and c in FRACTIONS and not 0 <= value <= 1:  # 1e308 would show as "inf %"
                not_fractions.append(f"line {n + 1} {c} {clip(text)!r}")
                value = None
            row[c] = value
        if all(v is None for v in row.values()):  # a blank or foreign line is not an epoch
            empty += 1
            continue
        row["epoch"] = int(row["epoch"]) if row["epoch"] is not None and row["epoch"].is_integer() else n
        if row["epoch"] in by_epoch:
            twice.append(row["epoch"])
        by_epoch[row["epoch"]] = row  # the later row: a resumed run rewrites the epoch it redoes
    if bad:
        more = f" and {len(bad) - MAX_NOTES} more" if len(bad) > MAX_NOTES else ""
        notes.append(f"{HISTORY}: values that are not numbers were left out: "
                     f"{'; '.join(bad[:MAX_NOTES])}{more}")
    if not_fractions:
        more = f" and {len(not_fractions) - MAX_NOTES} more" if len(not_fractions) > MAX_NOTES else ""
        notes.append(f"{HISTORY}: accuracies that are not fractions (0 to 1) were left out: "
                     f"{'; '.join(not_fractions[:MAX_NOTES])}{more}")
    if empty:
        notes.append(f"{HISTORY}: {empty} row{'s' if empty > 1 else ''} without a number in any column "
                     f"{'are' if empty > 1 else 'is'} not counted as epochs")
    if twice:
        epochs = ", ".join(str(e) for e in sorted(set(twice))[:MAX_NOTES])
        more = f" and {len(set(twice)) - MAX_NOTES} more" if len(set(twice)) > MAX_NOTES else ""
        notes.append(f"{HISTORY} has more than one row for epoch {epochs}{more}; each epoch is counted once, "
                     "from its last row")
    history = History(by_epoch[e] for e in sorted(by_epoch))
    if cut:
        history.cut = True
        to = f" (to epoch {history[-1]['epoch']:,})" if history else ""
        notes.append(f"{left_out}{to}; the rest is left out")
    return history, columns


def _read_json(path: Path, notes: list[str], note_missing: bool) -> dict:
    """A JSON object, or {} and a note saying why not."""
    if not path.is_file():
        if note_missing:
            notes.append(f"the run has no {path.name}; the summary is computed from {HISTORY}")
        return {}
    try:
        data = read_json(path)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError, and JSON nested too deeply, are ValueErrors
        notes.append(f"{path.name} could not be read ({clip(str(exc))}); the summary is computed from {HISTORY}")
        return {}
    if not isinstance(data, dict):
        notes.append(f"{path.name} is not a JSON object; ignored")
        return {}
    return data


def _parse_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None  # nan/inf (a diverged run): a gap, and a note


def positive_int_or_none(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def clip(text: str, n: int = 60) -> str:
    """One line of at most n characters, for quoting a value in a note."""
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[:n - 1] + "…"


def read_text(path: str) -> str | None:
    """The text of a UTF-8 file, or None if it cannot be read (the report shows what it can)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError):
        return None
