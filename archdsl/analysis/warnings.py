"""The warnings of a spec the analysis accepts (codes W3xx, archdsl/error_codes.py `WARNINGS`).

W301: a window that adds no context, as every unit of its input, the corner units included, already sees the
whole image. W302: a merge whose paths' fields are centred on different pixels, with the layer that shifts a
path and how to centre it.

Each check yields `Finding`s, one a layer; `said` turns them into `SpecWarning`s: the same warning of
consecutive layers (no layer the check passed in between) is said once for the range, and what the spec
silences (`allow W301` for the file, `# allow W301` after a layer for that line's layers) is kept apart.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..display import num, pair
from ..errors import ArchError, Span, SpecWarning
from ..ir import Layer, Model
from ..language import loads
from ..ops import op_of
from ..ops.geometry import Axis


@dataclass(frozen=True)
class Finding:
    """One layer's warning, before ranges are joined."""
    code: str
    layer: Layer
    detail: str                 # after "layer 5 (conv ...): "
    hint: str
    key: tuple                  # findings with one key on consecutive layers are said once
    detail_many: str = ""       # the detail of a range of layers, when it is said so


# ---------------------------------------------------------------- W301: the field already covers the input

def covers_input(axes: tuple[Axis, Axis], map_size: tuple[int, int], image: tuple[int, int]) -> bool:
    """Whether every unit of a map sees the whole image: the fields of its corner units (first and last on
    each axis) each contain [0, size - 1]. Fields move monotonically, so the units between see it too."""
    for axis in (0, 1):
        for unit in (0, map_size[axis] - 1):
            lo, hi = axes[axis].interval(unit)
            if lo > 0 or hi < image[axis] - 1:
                return False
    return True


def coverage_findings(model: Model, geo: dict[int, tuple]) -> tuple[list[Finding], set[int]]:
    """W301 findings, and the layers the check applies to (a window wider than 1x1 on one input)."""
    h, w, _ = model.input_shape
    found, checked = [], set()
    for layer in model.layers:
        if not op_of(layer).windowed or layer.kernel == (1, 1):  # a 1x1 window never adds context
            continue
        checked.add(layer.index)
        source = layer.inputs[0]
        if not covers_input(geo[source], layer.input_shape[:2], (h, w)):
            continue
        rf = pair(tuple(a.rf for a in geo[source]))
        found.append(Finding(
            "W301", layer,
            f"every unit of its input, the corner units too, already sees the whole {h}x{w} input (rf {rf}); "
            "it adds depth but no context",
            "downsample earlier (a stride or a pool) so that fewer layers reach the whole image, or drop layers; "
            "if the depth is deliberate, `allow W301` on a line of its own (or `# allow W301` at the end of a "
            "layer's line, for that line)",
            (),
            f"every unit of each one's input, the corner units too, already sees the whole {h}x{w} input; "
            "they add depth but no context"))
    return found, checked


# ---------------------------------------------------------------- W302: merged paths centred differently

def merge_finding(model: Model, layer: Layer, inputs: list[tuple]) -> Finding | None:
    """W302, when the merged paths' fields (which step alike: checked before) are centred on different pixels."""
    starts = [tuple(a.start for a in axes) for axes in inputs]
    if len(set(starts)) == 1:
        return None
    names = [f"layer {i}" if i else "the input" for i in layer.inputs]
    described = ", ".join(f"{n} at {_axes(s)}" for n, s in zip(names, starts))
    shifting = [model.layer(i) for i in sorted(own_layers(model, layer))]
    causes = [c for c in map(offset_cause, shifting) if c]
    fixes = list(dict.fromkeys(f for f in map(offset_fix, shifting) if f))
    detail = (f"the merged paths' receptive fields are centred on different pixels ({described}): "
              + ("; ".join(causes) or "their windows are centred differently"))
    hint = "; ".join(fixes or ["centre every path's windows alike (odd kernels, symmetric `pad`)"]) + \
        "; if the shift is deliberate, `allow W302` (or `# allow W302` on this line)"
    return Finding("W302", layer, detail, hint, (detail,))


def own_layers(model: Model, merge: Layer) -> set[int]:
    """The layers on some but not all of a merge's paths, back to where every path starts."""
    reach: dict[int, set[int]] = {}  # layer -> the paths that reach it
    for path, i in enumerate(merge.inputs):
        reach.setdefault(i, set()).add(path)
    own: set[int] = set()
    while reach:
        i = max(reach)  # inputs have lower indices: every path through i is known by now
        paths = reach.pop(i)
        if len(paths) == len(merge.inputs) and not reach:
            break
        if len(paths) < len(merge.inputs):
            own.add(i)
        for j in model.layer(i).inputs if i else ():
            reach.setdefault(j, set()).update(paths)
    return own


def _off_centre(layer: Layer):
    """(axis, window) of the first axis on which the layer's first window is not centred on its input's first
    unit; None if it is centred on both (or is no window)."""
    kind = op_of(layer)
    for axis in (0, 1):
        window = kind.window(layer, axis)
        if window is None:
            return None
        _, k, _, d, before, _ = window
        if before != (d * (k - 1)) / 2:
            return axis, window
    return None


def offset_cause(layer: Layer) -> str | None:
    """Why a layer's first window is not centred on its input's first unit, in the user's terms; None if it is."""
    off = _off_centre(layer)
    if off is None:
        return None
    _, (n, k, s, d, before, after) = off
    k_eff = d * (k - 1) + 1
    what = f"layer {layer.index} ({layer.text})"
    if k_eff % 2 == 0:
        return f"{what} has an even kernel, whose centre falls between two pixels"
    if layer.padding == "same":
        return f"{what} has stride {s} on size {n}, which TF's SAME padding pads {before} before and {after} after"
    if layer.padding == "explicit":
        return f"{what} pads {before} before and {after} after a {k_eff}-wide window, which centres it " \
               f"{(k_eff - 1) / 2 - before:g} units in from its input's edge"
    return f"{what} is `valid`: its first window is centred {(k_eff - 1) // 2} units in from its input's edge"


def offset_fix(layer: Layer) -> str | None:
    """How to write the layer so that its windows are centred on its input's first unit, with the same output
    size: each candidate is resolved and analysed as a one-layer spec, and only one that is is offered."""
    if _off_centre(layer) is None:
        return None
    for text, why in _rewrites(layer):
        if not _centred_alike(layer, text):
            continue
        block = next((part.split("#")[0] for part in reversed((layer.block or "").split("/")) if "(" in part), "")
        if block and text.replace(f" pad {_pad_word(_k_effs(layer))}", " same") == layer.text:
            # a line of a block with parameters: the one word to change, not this use's values
            return f"on line {layer.where.line} (block {block}: layer {layer.index} is `{layer.text}`), write " \
                   f"`pad {_pad_word(_k_effs(layer))}` for `same` ({why})"
        return f"write layer {layer.index} (line {layer.where.line}) as `{text}` ({why})"
    return None


def _k_effs(layer: Layer) -> list[int]:
    return [d * (k - 1) + 1 for k, d in zip(layer.kernel, layer.dilation)]


_STRIDE = re.compile(r"s\d+(x\d+)?")
_SIZE = re.compile(r"\d+x\d+")


def _rewrites(layer: Layer):
    """(layer text, why) candidates: TF's `same` as symmetric zeros; an even window one wider, padded evenly."""
    words = layer.text.split()
    kept, i = [], 0
    while i < len(words):  # the padding words out, the rest (kernel, stride, options, post-ops) as written
        if words[i] in ("same", "valid"):
            i += 1
        elif words[i] == "pad":
            i += 2
        else:
            kept.append(words[i])
            i += 1
    k_effs = _k_effs(layer)
    if all(k % 2 for k in k_effs):
        yield _with_pad(kept, k_effs), "symmetric zeros, as PyTorch pads, instead of TF's uneven `same`"
        return
    kernel = tuple(k + 1 if k_eff % 2 == 0 else k for k, k_eff in zip(layer.kernel, k_effs))
    at = next((j for j, w in enumerate(kept) if _SIZE.fullmatch(w)), None)
    if at is None:
        return
    wider = [*kept[:at], f"{kernel[0]}x{kernel[1]}", *kept[at + 1:]]
    if not any(_STRIDE.fullmatch(w) or w == "stride" for w in wider):  # a pool's stride defaults to its window
        wider[at + 1:at + 1] = ["stride", pair(layer.stride)]
    k_effs = [d * (k - 1) + 1 for k, d in zip(kernel, layer.dilation)]
    yield _with_pad(wider, k_effs), "an odd window is centred on a pixel; padded evenly, the output keeps its size"


def _with_pad(words: list[str], k_effs: list[int]) -> str:
    at = next((j for j, w in enumerate(words) if _SIZE.fullmatch(w)), 0)
    at += 2 if at + 1 < len(words) and words[at + 1].isdigit() else 1  # after the filters: `conv 3x3 32 pad 1`
    stride = [j for j, w in enumerate(words) if _STRIDE.fullmatch(w) or w == "stride"]
    if stride:  # after the stride, as people write it
        at = stride[0] + (2 if words[stride[0]] == "stride" else 1)
    return " ".join([*words[:at], f"pad {_pad_word(k_effs)}", *words[at:]])


def _centred_alike(layer: Layer, text: str) -> bool:
    """Whether `text`, on the layer's input, is a layer of the same output shape centred on its first unit."""
    h, w, c = layer.input_shape
    try:
        written = loads(f"input {h}x{w}x{c}\n{text}\n").layers
    except ArchError:
        return False
    return len(written) == 1 and written[0].output_shape == layer.output_shape and _off_centre(written[0]) is None


def _pad_word(k_effs: list[int]) -> str:
    rows, cols = ((k - 1) // 2 for k in k_effs)
    return str(rows) if rows == cols else f"{rows},{cols}"


def _axes(values) -> str:
    return pair([num(v) for v in values])


# ---------------------------------------------------------------- findings -> warnings, ranges joined

def said(model: Model, checks: list[tuple[list[Finding], set[int]]]) -> tuple[list[SpecWarning], list[SpecWarning]]:
    """(the warnings to say, the warnings the spec silences), in layer order, of checks given as (findings, the
    layers checked). A finding joins the range before it when it has the same key and silencing and no layer
    between them passed the same check."""
    findings = [f for found, _ in checks for f in found]
    checked = {f.code: layers for found, layers in checks for f in found}
    whole_file = {code: allow.line for allow in model.allows if allow.whole_file for code in allow.codes}
    by_line = {(code, allow.line): allow.line for allow in model.allows if not allow.whole_file
               for code in allow.codes}
    ranges: list[list[Finding]] = []
    silencing: list[int | None] = []
    latest: dict[str, int] = {}  # code -> the range of its latest finding, the one a finding may join
    warned = {(f.code, f.layer.index) for f in findings}
    for finding in sorted(findings, key=lambda f: f.layer.index):
        by = whole_file.get(finding.code, by_line.get((finding.code, finding.layer.where.line)))
        at = latest.get(finding.code)
        if at is not None and ranges[at][-1].key == finding.key and silencing[at] == by and not _passed_between(
                finding.code, ranges[at][-1].layer.index, finding.layer.index, checked.get(finding.code, set()),
                warned):
            ranges[at].append(finding)
            continue
        latest[finding.code] = len(ranges)
        ranges.append([finding])
        silencing.append(by)
    warnings = [_warning(run, by) for run, by in zip(ranges, silencing)]
    said_now = [w for w in warnings if not w.silenced] + _unused_allows(model, {(w.code, w.silenced_by)
                                                                                  for w in warnings})
    return said_now, [w for w in warnings if w.silenced]


def _unused_allows(model: Model, used: set[tuple[str, int | None]]) -> list[SpecWarning]:
    """W303 for each code of an `allow` that silences nothing (what it allowed is gone), as linters report an
    unused `# noqa`; `allow W303` silences these for the file (and is itself never reported)."""
    found = []
    for allow in model.allows:
        for code, column in zip(allow.codes, allow.columns or [1] * len(allow.codes)):
            if (code, allow.line) in used:
                continue
            where = ("no layer of the file gets " if allow.whole_file
                     else f"the layers of line {allow.line} get no ") + code
            written = f"allow {code}" if allow.whole_file else f"# allow {code}"
            alone = len(allow.codes) == 1
            fix = (("delete the line" if allow.whole_file else "delete the comment") if alone
                   else f"delete {code} from the {'line' if allow.whole_file else 'comment'}")
            found.append((code, SpecWarning("W303", f"`{written}` silences nothing: {where}",
                                            f"{fix} (what it allowed is no longer there)",
                                            Span(model.file, allow.line, column, column + len(code)), ())))
    if not found:
        return []
    own = found[0][1].code
    if own in {code for allow in model.allows if allow.whole_file for code in allow.codes}:
        return []
    return [w for code, w in found if code != own]


def _passed_between(code: str, first: int, last: int, checked: set[int], warned: set[tuple[str, int]]) -> bool:
    """Whether a layer between two findings passed the check that found them."""
    return any(i in checked and (code, i) not in warned for i in range(first + 1, last))


def _warning(run: list[Finding], silenced_by: int | None) -> SpecWarning:
    first = run[0]
    layer = first.layer
    if len(run) == 1:
        message = f"layer {layer.index} ({layer.text}): {first.detail}"
    else:
        texts = {f.layer.text for f in run}
        more = "" if len(texts) == 1 else " ..."
        detail = first.detail_many or first.detail
        message = f"layers {layer.index}-{run[-1].layer.index} ({layer.text}{more}): {detail}"
    width = (layer.where.end_column - layer.where.column) if layer.where.end_column else len(layer.text.split()[0])
    span = Span(layer.where.file, layer.where.line, layer.where.column, layer.where.column + width)
    return SpecWarning(first.code, message, first.hint, span, tuple(f.layer.index for f in run), silenced_by)
