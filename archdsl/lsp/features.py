"""What the editor asks of a reading: hover text, inlay hints, completions, symbols, block references.

Plain data out (strings, tuples, small dataclasses), in the front end's terms: 1-based lines and code-point
indices; server.py converts to LSP. A hover or a hint never re-reads the file: it looks up the reading's
`layers_at` (one dict lookup a line), so a 10,000-line spec answers as fast as a short one.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..display import num, pair, shape
from ..errors import Span
from ..ir import ACTIVATIONS
from ..language.blocks import STATEMENT_KEYWORDS
from ..language.choices import choices_of
from ..language.options import spellings
from ..language.spec import (
    BlockDef,
    LayerStmt,
    ParallelStmt,
    ResidualStmt,
    Statement,
    TrainSection,
)
from ..language.train_config import KEYS
from ..ops import OPS
from ..ops.base import OpSignature
from .document import Reading

HOVER_ROWS = 12          # a block body's line shows this many of its uses' rows, then a count
_WORD = re.compile(r"[A-Za-z0-9_.]+")
_LAYER_START = re.compile(r"^\s*(?:\d+\s*\*\s*)?([A-Za-z_]\w*)")
_COUNT = re.compile(r"^\d+\*?$|^\*$")


def op_doc(word: str) -> str | None:
    op = spellings().get(word.lower())
    return OPS[op].doc if op else None


# --- hover -------------------------------------------------------------------------------------------------

def hover(reading: Reading, line: int, index: int) -> str | None:
    """Markdown for the cursor at code point `index` of 1-based `line`: the op's documentation on its word,
    a block's definition on a use, and the table's rows of the layers written on the line."""
    lines = reading.lines
    if not 1 <= line <= len(lines):
        return None
    text = lines[line - 1]
    parts = []
    head = _LAYER_START.match(text.split("#", 1)[0])
    if head and head.start(1) <= index <= head.end(1):
        word = head.group(1)
        if doc := op_doc(word):
            parts.append(f"**{word}**: {doc}")
        elif block := blocks_of(reading).get(word):
            params = ", ".join(p.name.text + (f"={p.default.text}" if p.default else "") for p in block.params)
            summary = f"**block {word}**({params}): defined on line {block.span.line}"
            if expansion := reading.layers_at.get(line):
                first, last = expansion[0][0].index, expansion[-1][0].index
                summary += (f"; here {len(expansion)} layers (#{first} to #{last}), "
                            f"{sum(row.params for _, row in expansion):,} params")
            parts.append(summary)
    elif head and (doc := option_doc(head.group(1), text, index)):
        parts.append(doc)
    if doc := choice_doc(reading, text, index):
        parts.append(doc)
    if rows := layer_rows(reading, line):
        parts.append(rows)
    return "\n\n".join(parts) or None


def choice_doc(reading: Reading, text: str, index: int) -> str | None:
    """`**choice w**: 48, 64, 80 (line 8)` for a design space's choice name at `index`, where it is declared or
    used; the rows shown are the first feasible variant's, with its value."""
    if reading.spec is None:
        return None
    word = next((m.group() for m in re.finditer(r"[A-Za-z_]\w*", text.split("#", 1)[0])
                 if m.start() <= index <= m.end()), None)
    choice = next((c for c in choices_of(reading.spec) if c.name == word), None)
    if choice is None:
        return None
    doc = f"**choice {choice.name}**: {', '.join(choice.texts)} (line {choice.stmt.span.line})"
    if reading.analysis is not None and reading.shown_picks:
        doc += f"; shown: {choice.name} = {reading.shown_picks[choice.name]}"
    return doc


def option_doc(written_op: str, text: str, index: int) -> str | None:
    """`**same** (an option of sep): padding: ...` for the option word at `index` of a layer line."""
    op = spellings().get(written_op.lower())
    word = next((m.group() for m in _WORD.finditer(text.split("#", 1)[0]) if m.start() <= index <= m.end()), None)
    if op is None or word is None:
        return None
    key = word.lower()
    key = "s2" if re.fullmatch(r"s\d+(x\d+)?", key) else "d2" if re.fullmatch(r"d\d+(x\d+)?", key) else key
    detail = next((c.detail for c in option_completions(OPS[op].signature) if c.label == key), None)
    return f"**{word}** (an option of {written_op}): {detail}" if detail else None


def layer_rows(reading: Reading, line: int) -> str | None:
    """The table's rows (the `archdsl rf` columns) of the layers written on `line`, as a Markdown table."""
    layers = reading.layers_at.get(line)
    if not layers:
        return None
    blocks = any(layer.block for layer, _ in layers)
    head = ["#", "layer", "output", "rf", "jump", "start", "params", "MACs"] + (["block"] if blocks else [])
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for layer, row in layers[:HOVER_ROWS]:
        cells = [str(layer.index), f"`{layer.text}`", shape(layer.output_shape), *_geometry(layer, row),
                 f"{row.params:,}", f"{row.macs:,}"] + ([f"`{layer.block}`" if layer.block else ""] if blocks else [])
        out.append("| " + " | ".join(cells) + " |")
    if len(layers) > HOVER_ROWS:
        out.append(f"\n... and {len(layers) - HOVER_ROWS} more layers from this line")
    return "\n".join(out)


def _geometry(layer, row) -> list[str]:
    """rf, jump, start as the table writes them (`global` after gap or flatten)."""
    if not layer.spatial:
        return ["global", "", ""]
    return [pair(row.rf), pair(row.jump), pair(tuple(num(s) for s in row.start))]


# --- inlay hints -------------------------------------------------------------------------------------------

def inlay_hints(reading: Reading, first: int, last: int) -> list[tuple[int, str]]:
    """(1-based line, label) for each layer line in [first, last]: its (last) layer's output and rf, and the
    params of the layers written there: `32x32x16 · rf 5 · 464 params`. A line several layers come from
    apart (a block's body used twice) has none: the hover lists them."""
    hints = []
    for line in range(max(1, first), last + 1):
        layers = reading.layers_at.get(line)
        if not layers:
            continue
        indices = [layer.index for layer, _ in layers]
        if indices != list(range(indices[0], indices[0] + len(indices))):
            continue
        layer, row = layers[-1]
        rf = f"rf {pair(row.rf)}" if layer.spatial else "global"
        params = sum(r.params for _, r in layers)
        count = f"{len(layers)} layers · " if len(layers) > 1 else ""
        hints.append((line, f"{count}{shape(layer.output_shape)} · {rf} · {params:,} params"))
    return hints


# --- completion --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Completion:
    label: str
    kind: str      # op, block, keyword, option, activation, setting, parameter, choice
    detail: str = ""


LINE_KEYWORDS = [*STATEMENT_KEYWORDS, "residual", "parallel", "branch"]


def complete(reading: Reading, line: int, index: int) -> list[Completion]:
    """What may be written at code point `index` of `line`: an op, block or keyword at a line's start (a train
    setting inside `train { }`), the options its op takes after an op, a block's parameters in its use's
    parentheses."""
    lines = reading.lines
    if not 1 <= line <= len(lines):
        return []
    before = lines[line - 1][:index]
    if "#" in before:
        return []
    if call := _CALL.match(before):  # inside a block use's parentheses: its parameters not given yet
        params = block_parameters(reading).get(call.group(1), [])
        given = {arg.split("=")[0].strip() for arg in call.group(2).split(",") if "=" in arg}
        return [Completion(f"{p}=", "parameter", f"parameter of block {call.group(1)}") for p in params
                if p not in given] + choice_completions(reading)
    words = before.split()
    if words and not before[-1].isspace():
        words = words[:-1]  # the word being typed: the client filters by it
    while words and _COUNT.match(words[0]):  # `3 * sep`, `3* sep`
        words = words[1:]
    if inside_train(lines, line):
        return [Completion(key, "setting") for key in KEYS] if not words else choice_completions(reading)
    if not words:
        return ([Completion(word, "op", op_doc(word) or "") for word in sorted(spellings())]
                + [Completion(name, "block", f"block, line {line}") for name, line in written_block_names(reading)]
                + [Completion(word, "keyword") for word in LINE_KEYWORDS])
    op = spellings().get(words[0].lower())
    if op is None:
        return []
    return option_completions(OPS[op].signature) + choice_completions(reading)


_CHOOSE = re.compile(r"^\s*choose\s+([A-Za-z_]\w*)\s+in\s*\[([^\]]*)\]")


def choice_completions(reading: Reading) -> list[Completion]:
    """A design space's choice names, for where a value goes, each with its values: the parsed ones, or in
    text that does not parse (being typed), from the lines that start with `choose`."""
    if reading.spec is not None:
        found = [(c.name, ", ".join(c.texts), c.stmt.span.line) for c in choices_of(reading.spec)]
    else:
        found = [(m.group(1), ", ".join(v.strip() for v in m.group(2).split(",")), number)
                 for number, text in enumerate(reading.lines, 1) if (m := _CHOOSE.match(text))]
    return [Completion(name, "choice", f"choice [{values}], line {line}") for name, values, line in found]


def option_completions(sig: OpSignature) -> list[Completion]:
    """The option words an op with this signature accepts, each with what it does (options.py reads them)."""
    items = []
    if sig.window:
        items += [Completion("same", "option", "padding: output = ceil(input / stride)"),
                  Completion("valid", "option", "padding: none, output = ceil((input - window + 1) / stride)"),
                  Completion("pad", "option", "explicit padding: `pad 1`, `pad 1,2` (rows, columns)"),
                  Completion("s2", "option", "stride 2 (`s2x1`: rows, columns)"),
                  Completion("stride", "option", "`stride 2`")]
    if sig.dilation:
        items += [Completion("d2", "option", "dilation 2 (`d2x1`: rows, columns)"),
                  Completion("dilation", "option", "`dilation 2`")]
    if sig.depth_multiplier:
        items.append(Completion("dm", "option", "depth multiplier: `dm 2`"))
    if sig.groups:
        items.append(Completion("groups", "option", "a grouped convolution: `groups 4`"))
    if sig.factor:
        items += [Completion("nearest", "option", "nearest-neighbour upsampling (default)"),
                  Completion("bilinear", "option", "bilinear upsampling")]
    if sig.bias is not None:
        items += [Completion("bias", "option", "with a bias"), Completion("nobias", "option", "without a bias")]
    if sig.whiten:
        items.append(Completion("whiten", "option", "a frozen kernel set from the training images' patches"))
    if sig.post:
        items += [Completion("drop", "option", "dropout after the op: `drop .05`"),
                  Completion("bn", "option", "batch normalization after the op"),
                  Completion("noscale", "option", "after `bn`: no gamma"),
                  Completion("nocenter", "option", "after `bn`: no beta"),
                  Completion("none", "option", "no activation")]
        items += [Completion(name, "activation", "activation") for name in ACTIVATIONS]
    elif sig.scale_center:
        items += [Completion("noscale", "option", "no gamma"), Completion("nocenter", "option", "no beta")]
    return items


def inside_train(lines: tuple[str, ...], line: int) -> bool:
    """Whether 1-based `line` is inside a `train { ... }` section, read from the text (it may not parse)."""
    depth, in_train = 0, False
    for number in range(1, line):
        code = lines[number - 1].split("#", 1)[0]
        words = code.split()
        if depth == 0 and words[:1] == ["train"] and "{" in code:
            in_train = True
        depth += code.count("{") - code.count("}")
        if depth <= 0:
            depth, in_train = 0, False
    return in_train


# --- blocks and symbols ------------------------------------------------------------------------------------

def blocks_of(reading: Reading) -> dict[str, BlockDef]:
    return dict(block_names(reading))


def block_names(reading: Reading) -> list[tuple[str, BlockDef]]:
    if reading.spec is None:
        return []
    return [(s.name.text, s) for s in reading.spec.statements if isinstance(s, BlockDef)]


_BLOCK_LINE = re.compile(r"^\s*block\s+([A-Za-z_]\w*)")


def written_block_names(reading: Reading) -> list[tuple[str, int]]:
    """(name, line) of each block definition: the parsed ones, or in text that does not parse (being typed)
    the lines that start one."""
    if reading.spec is not None:
        return [(name, block.span.line) for name, block in block_names(reading)]
    return [(m.group(1), number) for number, line in enumerate(reading.lines, 1) if (m := _BLOCK_LINE.match(line))]


_CALL = re.compile(r"^\s*(?:\d+\s*\*\s*)?([A-Za-z_]\w*)\s*\(([^)]*)$")
_BLOCK_PARAMS = re.compile(r"^\s*block\s+([A-Za-z_]\w*)\s*\(([^)]*)\)")


def block_parameters(reading: Reading) -> dict[str, list[str]]:
    """Each block's parameter names: the parsed ones, or in text that does not parse, from the lines that
    start a block."""
    if reading.spec is not None:
        return {name: [p.name.text for p in block.params] for name, block in block_names(reading)}
    return {m.group(1): [p.split("=")[0].strip() for p in m.group(2).split(",") if p.strip()]
            for line in reading.lines if (m := _BLOCK_PARAMS.match(line))}


def block_at(reading: Reading, line: int, index: int) -> str | None:
    """The block name under the cursor (its definition or a use), or None."""
    blocks = blocks_of(reading)
    if not 1 <= line <= len(reading.lines):
        return None
    for match in _WORD.finditer(reading.lines[line - 1].split("#", 1)[0]):
        if match.start() <= index <= match.end() and match.group() in blocks:
            return match.group()
    return None


def block_spans(reading: Reading, name: str, declaration: bool = True) -> list[Span]:
    """Where block `name` is defined (if `declaration`) and used."""
    if reading.spec is None:
        return []
    found = []
    for stmt in _walk(reading.spec.statements):
        if isinstance(stmt, BlockDef) and stmt.name.text == name and declaration:
            found.append(stmt.name.span)
        elif isinstance(stmt, LayerStmt) and stmt.op.text == name:
            found.append(stmt.op.span)
    return found


def _walk(statements: list[Statement]):
    for stmt in statements:
        yield stmt
        if isinstance(stmt, BlockDef):
            yield from _walk(stmt.body)
        elif isinstance(stmt, ResidualStmt):
            yield from _walk(stmt.body.statements)
            yield from _walk(stmt.shortcut.statements if stmt.shortcut else [])
        elif isinstance(stmt, ParallelStmt):
            for branch in stmt.branches:
                yield from _walk(branch.body.statements)


@dataclass
class Symbol:
    name: str
    kind: str                  # block, layer, residual, parallel, train
    line: int                  # 1-based, first and last line
    end_line: int
    children: list[Symbol] = field(default_factory=list)


def symbols(reading: Reading) -> list[Symbol]:
    """The outline: blocks, layers (residual and parallel with their layers inside), the train section."""
    return _symbols(reading.spec.statements, reading.lines) if reading.spec else []


def _symbols(statements: list[Statement], lines: tuple[str, ...]) -> list[Symbol]:
    out = []
    for stmt in statements:
        if isinstance(stmt, BlockDef):
            out.append(Symbol(f"block {stmt.name.text}", "block", stmt.span.line, stmt.end_line,
                              _symbols(stmt.body, lines)))
        elif isinstance(stmt, LayerStmt) and stmt.span:
            written = lines[stmt.span.line - 1].split("#", 1)[0].strip()
            out.append(Symbol(written or stmt.op.text, "layer", stmt.span.line, stmt.span.line))
        elif isinstance(stmt, ResidualStmt):
            inner = _symbols(stmt.body.statements, lines)
            if stmt.shortcut:
                inner.append(Symbol("shortcut", "residual", stmt.shortcut.line, stmt.shortcut.end_line,
                                    _symbols(stmt.shortcut.statements, lines)))
            out.append(Symbol("residual" + (f" {stmt.merge.text}" if stmt.merge else ""), "residual",
                              stmt.span.line, stmt.end_line, inner))
        elif isinstance(stmt, ParallelStmt):
            branches = [Symbol("branch", "parallel", b.span.line, b.body.end_line, _symbols(b.body.statements, lines))
                        for b in stmt.branches]
            out.append(Symbol(f"parallel {stmt.merge.text}", "parallel", stmt.span.line, stmt.end_line, branches))
        elif isinstance(stmt, TrainSection):
            out.append(Symbol("train", "train", stmt.span.line, stmt.end_line))
    return out
