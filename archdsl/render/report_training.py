"""The training section of `archdsl report`: a run's summary, settings, curves and table of epochs.

    section = training(read_run("runs/best/20261125-220911"), model)   # a dict for the templates

The run comes from `run_reader`, which is lenient, and so is this: a metric that is missing
or not a number is a dash and a note, the summary falls back on history.csv where metrics.json
is silent (and trusts history.csv when a kill between the two writes left it an epoch ahead),
and a run is called complete only on evidence. Numbers are formatted here as page text; the
curves are `charts`' SVG.
"""
from __future__ import annotations

import math
import ntpath
import posixpath

from . import charts
from ..ir import Model
from ..runs.reader import HISTORY, METRICS, Run, clip, positive_int_or_none, read_json, read_text


def training(run: Run, model: Model) -> dict:
    h, m = run.history, run.metrics
    notes = list(run.notes)
    number = _metric_reader(m, notes)
    # history.csv went on past what the reader reads: its count and its last epochs are not known
    cut = getattr(h, "cut", False)

    done = len(h)
    last = h[-1]["epoch"] if h else None
    done_metrics = positive_int_or_none(m.get("epochs_done"))
    # a kill between the history.csv and metrics.json writes leaves history an epoch ahead: trust the newer
    ahead = not cut and last is not None and done_metrics is not None and last > done_metrics
    if done_metrics is not None and done_metrics != done and not cut:
        source = HISTORY if ahead else METRICS
        notes.append(f"{METRICS} covers {done_metrics} epochs, {HISTORY} {done}; the best and final accuracy "
                     f"are from {source}")
    best_acc, best_epoch = (None, None) if ahead else (number("best_val_accuracy", fraction=True),
                                                       positive_int_or_none(m.get("best_epoch")))
    vals = [(r["epoch"], r["val_accuracy"]) for r in h if r["val_accuracy"] is not None]
    best_of_part = False
    if best_acc is None and vals:
        best_epoch, best_acc = max(vals, key=lambda ev: (ev[1], -ev[0]))
        best_of_part = cut
    final_acc, final_epoch = (None, None) if ahead else (number("final_val_accuracy", fraction=True),
                                                         done_metrics or last)
    if final_acc is None and h and not cut:
        final_acc, final_epoch = h[-1]["val_accuracy"], last
    wall = number("wall_seconds")
    if wall is None and h and not cut and any(r["seconds"] is not None for r in h):
        wall = sum(r["seconds"] or 0.0 for r in h)
        if not math.isfinite(wall):
            notes.append(f"{HISTORY}: the seconds add up to more than a number can hold; the wall time is not shown")
            wall = None
    ips, ips_later = number("images_per_second"), number("images_per_second_after_epoch_1")

    planned = run.planned_epochs
    if cut:  # the count is metrics.json's, or unknown (more than was read)
        done = done_metrics
    shown_done = f"{done}" if done is not None else f"{len(h)}+"
    incomplete = None
    if not h:
        incomplete = f"{HISTORY} has no epochs yet"
    elif planned and done is not None and done < planned:
        incomplete = f"incomplete run: {done} of {planned} planned epochs in {METRICS if cut else HISTORY}"
    elif run.complete is False:
        incomplete = f"the run is not marked complete ({shown_done} epochs in {HISTORY})"
    # "complete" needs evidence: the run says so, or it reached the epochs it planned
    status = ("incomplete" if incomplete else "complete" if run.complete or (planned and done is not None)
              else "count unknown" if planned else "plan unknown")
    if isinstance(m.get("spec"), str) and m["spec"] != model.name:
        notes.append(f"this run trained model '{m['spec']}', and the spec is model '{model.name}'")
    elif run.spec_text is not None and read_text(model.file) not in (None, run.spec_text):
        notes.append(f"the run's spec.arch differs from {model.file}: the curves are of the run's version")

    split = validation_split(run, notes)
    summary = [
        (f"best val accuracy ({split})", _pct(best_acc), (f"epoch {best_epoch}" + (" (the best of the epochs read)"
                                                                         if best_of_part else "")) if best_epoch else ""),
        (f"final val accuracy ({split})", _pct(final_acc), f"epoch {final_epoch}" if final_epoch is not None else ""),
        ("epochs", shown_done + (f" of {planned}" if planned else ""), status),
        ("wall time", _seconds(wall), _duration(wall)),
        ("training images/s", _rate(ips), f"{_rate(ips_later)} after epoch 1" if ips_later is not None else ""),
    ]
    details = _run_details(m)
    curves = _curves(h, best_epoch, f"val ({split})")
    if len(h) > charts.MAX_POINTS:
        notes.append(f"the curves are downsampled from {len(h):,} epochs to at most {charts.MAX_POINTS} points a "
                     "line (of each stretch of epochs its first, last, lowest and highest)")
    if not any(r["lr"] is not None for r in h) and h:
        notes.append(f"{HISTORY} records no learning rate, so there is no lr curve")
    table = [{"epoch": r["epoch"], "lr": _fmt(r["lr"], ".3g"), "loss": _fmt(r["loss"], ".4f"),
              "accuracy": _pct(r["accuracy"]), "val_loss": _fmt(r["val_loss"], ".4f"),
              "val_accuracy": _pct(r["val_accuracy"]), "seconds": _fmt(r["seconds"], ".1f"),
              "best": r["epoch"] == best_epoch} for r in h]
    return {"path": str(run.path), "summary": summary, "details": details, "incomplete": incomplete,
            "notes": notes, "curves": curves, "history": table, "val": f"val ({split})"}


def validation_split(run: Run, notes: list[str]) -> str:
    """What the run validated on, for the labels of its val curves and metrics: `held-out 5,000` when it kept
    training images apart (`val_split`, a count, in its settings), else `test split`: runs made before
    `val_split` existed (and runs with 0) validated on the test images. Read leniently from metrics.json
    (top level or `settings`) or the checkpoint's state.json, so old and new runs both render."""
    places = [run.metrics, run.metrics.get("settings")]
    try:
        state = read_json(run.path / "checkpoint" / "state.json")
    except (OSError, ValueError):  # missing, unreadable or nested too deeply: no label from it
        state = None
    places.append(state.get("settings") if isinstance(state, dict) else None)
    for place in places:
        if isinstance(place, dict) and place.get("val_split") is not None:
            value = place["val_split"]
            if value == 0 and not isinstance(value, bool):
                return "test split"
            if positive_int_or_none(value) is None:
                notes.append(f"the run's val_split is {clip(repr(value))}, not a count of images; "
                             "its validation is labelled as the test split")
                return "test split"
            return f"held-out {value:,}"
    return "test split"


def _metric_reader(m: dict, notes: list[str]):
    def number(key: str, fraction: bool = False) -> float | None:
        """metrics.json's `key` as a float; None (and a note) if it is not a finite number, or for an
        accuracy (`fraction`) not one from 0 to 1: 1e308 is no accuracy, and as a percentage it is inf."""
        value = m.get(key)
        if value is None:
            return None
        try:  # float() of an int past 1e308 (json.loads reads any) overflows
            ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(float(value))
        except OverflowError:
            ok = False
        if not ok:
            notes.append(f"{METRICS}: {key} is {clip(repr(value))}, not a number")
            return None
        if fraction and not 0 <= value <= 1:
            notes.append(f"{METRICS}: {key} is {clip(repr(value))}, not a fraction (0 to 1)")
            return None
        return float(value)
    return number


def _run_details(m: dict) -> list[tuple[str, str, str]]:
    """Settings of the run worth a line: data, batch, lr, seed (strings from the run are user text); each
    (label, value, the value in full where the page shortens it, else "")."""
    out = []
    data = m.get("data")
    if isinstance(data, dict):
        source = data.get("source")
        counts = [f"{data[k]:,} {w}" for k, w in (("train_images", "training"), ("test_images", "test"))
                  if isinstance(data.get(k), int)]
        if source is not None or counts:
            shown, full = data_source(source)
            out.append(("data", shown + (f" ({' / '.join(counts)} images)" if counts else ""), full))
    for key, label in (("batch", "batch"), ("lr", "initial lr"), ("seed", "seed"), ("params", "params")):
        value = m.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((label, f"{value:,}" if isinstance(value, int) else f"{value:g}", ""))
        elif value is not None:
            out.append((label, clip(str(value), 200), ""))
    if isinstance(m.get("spec"), str):
        out.insert(0, ("model trained", m["spec"], ""))
    return out


def data_source(source) -> tuple[str, str]:
    """The run's data as the page names it, and the recorded path in full where that is shortened ("" if not).

    `archdsl train` records the data as an absolute path (a resume may start in another folder), which
    names folders of the machine the run was made on: elsewhere they mean nothing, and a page that is
    shared or kept in a repository should not carry them. The page shows the file's name, the part that
    tells one data set from another; the HTML keeps the full path in a tooltip (metrics.json keeps it
    too). A relative path or a name (`cifar10 (keras.datasets.cifar10)`) is shown as it is."""
    if source is None:
        return "?", ""
    text = str(source)
    path = posixpath if posixpath.isabs(text) else ntpath if ntpath.isabs(text) else None
    if path is None:
        return text, ""
    return path.basename(text.rstrip("/\\" if path is ntpath else "/")) or text, text


def _curves(h: list[dict], best_epoch: int | None, val: str) -> list[dict]:
    """The line charts: loss and accuracy (train vs `val`, the validation's label), lr; each {"name", "svg"}.
    The loss axis turns logarithmic when the losses span a decade or more (`charts.line_chart`'s y_scale)."""
    def series(key: str, name: str, colour: str, dashed: bool = False):
        points = [(r["epoch"], r[key]) for r in h]
        return charts.Series(name, points, colour, dashed) if any(y is not None for _, y in points) else None

    out = []
    loss = [s for s in (series("loss", "train", charts.COLOURS[0]), series("val_loss", val, charts.COLOURS[1]))
            if s]
    if loss:
        out.append({"name": "loss", "svg": charts.line_chart(loss, title="Loss", y_format=_tick, y_scale="auto",
                                                             value_format=lambda v: f"{v:.4f}")})
    acc = [s for s in (series("accuracy", "train", charts.COLOURS[0]),
                       series("val_accuracy", val, charts.COLOURS[1])) if s]
    if acc:
        markers = [charts.Marker(best_epoch, f"best {best_epoch}")] if best_epoch else []
        out.append({"name": "accuracy", "svg": charts.line_chart(
            acc, title="Accuracy", y_format=lambda v: f"{v * 100:g} %", value_format=_pct, markers=markers)})
    lr = series("lr", "lr", charts.COLOURS[2])
    if lr:
        out.append({"name": "lr", "svg": charts.line_chart([lr], title="Learning rate", y_format=_tick,
                                                           value_format=lambda v: f"{v:.4g}")})
    return out


def _tick(v: float) -> str:
    return f"{v:.4g}"


def _pct(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v * 100:.2f} %" if 0 <= v <= 1 else f"{v:g}"  # no fraction (read leniently): shown as given


def _fmt(v: float | None, spec: str) -> str:
    return "" if v is None else format(v, spec)


def _seconds(s: float | None) -> str:
    return "—" if s is None else f"{s:,.1f} s" if abs(s) < 1e15 else f"{s:.3g} s"


def _duration(s: float | None) -> str:
    if s is None or not 60 <= s < 1e15:  # past 1e15 s (30 million years) hours would be a wall of digits
        return ""
    minutes, seconds = divmod(round(s), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {seconds:02d} s"


def _rate(v: float | None) -> str:
    return "—" if v is None else f"{v:,.0f}"
