"""Written spec -> resolved IR: expand repeats and blocks, fill defaults, infer every shape.

All errors of a file are collected and raised together. After a layer that cannot be
resolved, shapes are unknown, so later layers are still checked for their options but
not for shapes (one mistake should not cause a cascade of messages).
Each layer's fields, name and output shape are its op's to work out (`archdsl.ops`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from pathlib import Path

from .allows import read_allows
from .blocks import STATEMENT_KEYWORDS, bind, check_definitions, note_origin, substitute_at_use
from ..errors import ArchError, SpecSemanticError, did_you_mean, raise_collected
from ..ir import Assertion, Layer, Model, Where
from .formatter import canonical_token
from ..ops import OPS, op_of
from .options import WRITTEN_OPS, assert_name, canonical_op, read_options, unknown_op_hint
from .spec import (AssertStmt, BlockDef, ChooseStmt, HeaderStmt, LayerStmt, ParallelStmt, ResidualStmt, Spec, Token,
                   TrainSection, written_tokens)
from .merges import MERGES, expand_merge_block, join_label
from .train_config import resolve_train

MAX_REPEAT = 1000
_UNUSABLE = Token("name", "", None)  # what a parameter named wrongly stands for in its block's body
MAX_LAYERS = 10_000
MAX_STEPS = 100_000
MAX_NESTING = 32
METRICS = ("params", "trainable_params", "non_trainable_params", "macs", "rf", "rf_h", "rf_w",
           "jump", "layers", "output", "ram", "flash")


@dataclass
class _State:
    spec: Spec
    blocks: dict[str, BlockDef]
    broken: set[str]                       # blocks whose definition has an error: their uses are skipped
    unusable: dict[str, set[str]]          # a block's parameters named wrongly: its lines using them are skipped
    too_large: set                         # spans of numerals beyond float range, each reported once
    errors: list[ArchError] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    shape: tuple[int, ...] | None = None   # output of the current tip; None once unknown
    last: int = 0                          # index of the current tip (0: the model input)
    steps: int = 0                         # statements expanded so far, to bound the work
    uses: dict[str, int] = field(default_factory=dict)
    too_many: bool = False

    # what merges.py calls back to expand a path's statements
    def expand_statement(self, stmt, env: dict, block: str | None, depth: int) -> None:
        _expand_statement(self, stmt, env, block, depth)

    def room_for_one_more(self, stmt, block: str | None) -> bool:
        return _room_for_one_more(self, stmt, block)


def resolve(spec: Spec) -> Model:
    if not spec.statements:  # a whole-file problem: no line to point at
        what = "is empty" if not spec.text.strip() else "has only comments and blank lines"
        raise SpecSemanticError(f"{spec.file} {what}", None, "a spec needs at least an `input` line and a layer, "
                                "e.g. `input 32x32x3` and `sep 3x3 32 same bn relu`", "E201", spec.text)
    choose = next((s for s in spec.statements if isinstance(s, ChooseStmt)), None)
    if choose is not None:  # a family of specs: each member is resolved on its own (language/choices.py)
        raise SpecSemanticError(f"{spec.file} is a design space (`choose {choose.name.text} in [...]`), not one model",
                                choose.span, "list its variants with `archdsl space FILE`, and write them as "
                                "specs with `archdsl space FILE --write DIR`; or replace the choice by a value",
                                "E285", spec.text)
    errors: list[ArchError] = []
    huge = [tok for tok in written_tokens(spec.statements) if tok.too_large]
    too_large = {tok.span for tok in huge}
    headers = _headers(spec, errors)
    blocks, broken, unusable = check_definitions(spec, errors)
    input_shape = headers.get("input")
    state = _State(spec, blocks, broken, unusable, too_large, errors, shape=input_shape)
    env = {}
    if "classes" in headers:
        env["classes"] = headers["classes_token"]
    for stmt in spec.statements:
        _expand_statement(state, stmt, env, block=None, depth=0)
    if state.too_many:
        # the expansion stopped at a limit (E228): what the model would end with is unknown (a residual
        # cut short leaves its entry's shape as the tip), so nothing is checked against it
        state.shape = None
    assertions = [a for a in (_assertion(s, spec.file, errors) for s in spec.statements
                              if isinstance(s, AssertStmt)) if a]
    sections = [s for s in spec.statements if isinstance(s, TrainSection)]
    for extra in sections[1:]:
        errors.append(SpecSemanticError("a second train section", extra.span,
                                        f"merge it into the one on line {sections[0].span.line}", "E207"))
    train = resolve_train(sections[0] if sections else None, errors)
    allows = read_allows(spec, state.layers, errors)
    if not state.layers and not errors:
        where = spec.statements[0].span if spec.statements else None
        errors.append(SpecSemanticError("the spec has no layers", where,
                                        "add layers, e.g. `sep 3x3 32 same bn relu`", "E201"))
    classes = headers.get("classes")
    if classes and state.layers and state.shape is not None and state.shape[-1] != classes:
        # point at the layer that sets the channel count, not at a softmax after it
        last = next((layer for layer in reversed(state.layers) if op_of(layer).sets_channels(layer)),
                    state.layers[-1])
        # `classes` can stand for a count the layer takes: filters or units (dw and pools take none)
        use = f" (write `classes` as its {op_of(last).count_word})" if last.filters else ""
        errors.append(SpecSemanticError(
            f"the model ends with {state.shape[-1]} outputs but `classes {classes}` is declared",
            _where_span(last.where, len(last.text.split()[0])), f"make the last layer produce {classes} channels"
            f"{use}, or fix the classes line", "E208"))
    # a numeral beyond float range is said once, not again by each check that reads it
    errors[:] = [e for e in errors if e.span not in too_large] + [
        SpecSemanticError(f"the number '{tok.text}' is too large", tok.span,
                          "write a number below about 1.8e308 (the largest a float holds)", "E217")
        for tok in huge]
    # a repeated layer or a block used twice would report the same mistake once a copy
    errors[:] = list({(e.span, e.code, e.message): e for e in errors}.values())
    for e in errors:
        e.source = spec.text
    raise_collected(errors)
    return Model(name=headers.get("model") or _name_from_file(spec.file), file=spec.file,
                 input_shape=input_shape, classes=classes, layers=tuple(state.layers),
                 assertions=tuple(assertions), train=train, allows=allows)


def _headers(spec: Spec, errors: list) -> dict:
    found: dict = {}
    seen: dict[str, HeaderStmt] = {}
    for stmt in spec.statements:
        if not isinstance(stmt, HeaderStmt):
            continue
        if stmt.keyword in seen:
            errors.append(SpecSemanticError(f"`{stmt.keyword}` is declared twice", stmt.span,
                                            f"keep the one on line {seen[stmt.keyword].span.line}", "E202"))
            continue
        seen[stmt.keyword] = stmt
        tok = stmt.value
        if stmt.keyword == "model":
            found["model"] = tok.text
        elif stmt.keyword == "input":
            dims = tok.dims
            if len(dims) != 3 or not all(1 <= d <= 100_000 for d in dims):
                errors.append(SpecSemanticError(f"an input shape is HxWxC with each side at least 1, not "
                                                f"'{tok.text}'", tok.span, "write e.g. `input 32x32x3`", "E203"))
            else:
                found["input"] = dims
        elif stmt.keyword == "classes":
            n = tok.number
            if n != int(n) or not 1 <= n <= 1_000_000:
                errors.append(SpecSemanticError(f"classes must be a whole number of at least 1, not "
                                                f"'{tok.text}'", tok.span, "write e.g. `classes 10`", "E204"))
            else:
                found["classes"] = int(n)
                found["classes_token"] = tok
    if "input" not in seen:
        errors.append(SpecSemanticError("the spec has no `input` line", _first_span(spec),
                                        "declare the input shape, e.g. `input 32x32x3`", "E205"))
    return found


def _expand_statement(state: _State, stmt, env: dict, block: str | None, depth: int) -> None:
    """Add the layers a layer line, block use, residual or parallel statement stands for."""
    state.steps += 1
    if state.steps > MAX_STEPS and not state.too_many:
        # nested repeats of statements that add no layer (e.g. ones with errors) are bounded too
        state.errors.append(SpecSemanticError(f"the spec expands to more than {MAX_STEPS:,} statements here",
                                              stmt.span, "lower the repeat counts", "E228"))
        state.too_many = True
    if state.too_many:
        return
    if isinstance(stmt, LayerStmt):
        _expand(state, stmt, env, block, depth)
    elif isinstance(stmt, (ResidualStmt, ParallelStmt)):
        count = _repeat_count(stmt.count, env, state.errors)
        for _ in range(count or 0):
            if state.too_many:
                return
            expand_merge_block(state, stmt, env, block, depth)


def _repeat_count(tok: Token | None, env: dict, errors: list) -> int | None:
    """A statement's repeat count; a name (`n * res(64)`) stands for a block parameter's value."""
    if tok is None:
        return 1
    (value,), origins = substitute_at_use([tok], env, errors)
    n = value.number if value.kind == "number" else None
    if n is None or n != int(n) or not 1 <= n <= MAX_REPEAT:
        what = f"'{tok.text}'" + (f" (`{tok.text}` is {origins[tok.span][1].text})" if origins else "")
        errors.append(SpecSemanticError(f"a repeat count is a whole number from 1 to {MAX_REPEAT}, not {what}",
                                        tok.span, "write e.g. `3 * sep 3x3 64 same`" + (
                                            "; a name here is a block parameter's or a choice's, standing for "
                                            "such a number" if tok.kind == "name" else ""), "E223"))
        return None
    return int(n)


def _expand(state: _State, stmt: LayerStmt, env: dict, block: str | None, depth: int) -> None:
    count = _repeat_count(stmt.count, env, state.errors)
    if count is None:
        return
    name = stmt.op.text
    if any(env.get(tok.text) is _UNUSABLE for tok in [*stmt.args, *(a.value for a in stmt.call_args or [])]):
        state.shape = None  # a parameter named wrongly: what it stands for is unknown, its definition's error says it
        return
    if name in state.broken and (stmt.call_args is not None or not canonical_op(name)):
        state.shape = None  # a use of a block defined wrongly: the definition's error says it
        return
    if name in state.blocks:
        _expand_block(state, stmt, env, block, depth, count)
        return
    op = canonical_op(name)
    if op is None:
        hint = "`allow` goes on a line of its own outside any block, or as `# allow CODE` at the end of a " \
            "layer's line" if name.lower() == "allow" else unknown_op_hint(name, list(state.blocks) + STATEMENT_KEYWORDS)
        state.errors.append(SpecSemanticError(f"unknown op '{name}'", stmt.op.span, hint, "E206"))
        state.shape = None
        guess = get_close_matches(name.lower(), WRITTEN_OPS, n=1, cutoff=0.6)
        if guess:  # check the options as if the suggestion were written, to report their typos too
            guessed: list[ArchError] = []
            read_options(canonical_op(guess[0]), guess[0], stmt.args, guessed)
            state.errors.extend(e for e in guessed if e.span is not None)
        return
    if stmt.call_args is not None:
        state.errors.append(SpecSemanticError(f"'{name}' is an op, not a block: it takes no (arguments)",
                                              stmt.op.span, "write its options after it, e.g. `sep 3x3 64`", "E224"))
        return
    reported = len(state.errors)
    tokens, origins = substitute_at_use(stmt.args, env, state.errors)
    if len(state.errors) > reported:  # an undeclared `classes`: said once, not again as an unknown option
        state.shape = None
        return
    label = block
    if count > 1:
        written = canonical_token(stmt.op)  # as fmt prints it: `2 * SEP` and `2 * sep` are one model
        state.uses[written] = state.uses.get(written, 0) + 1
        label = join_label(block, f"{count}*{written}#{state.uses[written]}")
    for _ in range(count):
        # a copy of a layer that failed would only fail again the same way
        if not _add_layer(state, stmt, op, tokens, label, origins) or state.shape is None:
            return


def _expand_block(state, stmt: LayerStmt, env: dict, block: str | None, depth: int, count: int) -> None:
    definition = state.blocks[stmt.op.text]
    name = definition.name.text
    chain = [part.split("(")[0] for part in (block or "").split("/") if "(" in part]
    if name in chain:
        cycle = " -> ".join(chain[chain.index(name):] + [name])
        state.errors.append(SpecSemanticError(f"block '{name}' uses itself ({cycle})", stmt.op.span,
                                              "a block cannot contain itself, directly or through another", "E225"))
        state.shape = None
        return
    if depth >= MAX_NESTING:
        state.errors.append(SpecSemanticError(f"blocks are nested more than {MAX_NESTING} deep here", stmt.op.span,
                                              "flatten some of the blocks", "E225"))
        state.shape = None
        return
    if stmt.args:
        state.errors.append(SpecSemanticError(f"a use of block '{definition.name.text}' takes no options",
                                              stmt.args[0].span, "pass values as arguments: "
                                              f"`{definition.name.text}(...)`", "E226"))
        return
    bound = bind(definition, stmt, env, state.errors)
    if bound is None:
        state.shape = None
        return
    for _ in range(count):
        state.uses[definition.name.text] = n = state.uses.get(definition.name.text, 0) + 1
        args = ",".join(canonical_token(t) for t in bound.values() if t is not None)
        label = join_label(block, f"{definition.name.text}({args})#{n}")
        inner_env = {**env, **bound, **dict.fromkeys(state.unusable.get(name, ()), _UNUSABLE)}
        for inner in definition.body:
            _expand_statement(state, inner, inner_env, label, depth + 1)
            if state.too_many:
                return


def _add_layer(state: _State, stmt: LayerStmt, op: str, tokens: list[Token], block: str | None,
               origins: dict) -> bool:
    if not _room_for_one_more(state, stmt, block):
        return False
    new_errors: list[ArchError] = []
    opts = read_options(op, stmt.op.text, tokens, new_errors)
    for e in new_errors:
        e.span = e.span or stmt.op.span
    state.errors.extend(e for e in new_errors if note_origin(e, origins, state.too_large))
    if new_errors or state.shape is None:
        state.shape = None
        return True
    kind = OPS[op]
    in_shape = state.shape
    index = len(state.layers) + 1
    written = stmt.op.text
    fields = dict(use_bias=bool(kind.signature.bias) if opts.use_bias is None else opts.use_bias,
                  filters=opts.filters, rate=opts.rate, post=tuple(opts.post), **kind.resolve_fields(opts, written))

    def fail(message, hint, code="E230"):
        state.errors.append(SpecSemanticError(message, stmt.op.span, hint, code))

    out = kind.output_shape(in_shape, fields, written, fail)
    if out is not None and opts.whiten is not None \
            and not kind.whitening_fits(opts.whiten, state.last, in_shape, fields, state.errors):
        out = None  # the error is said; the layers after it are not checked
    if out is None:
        state.shape = None
        return True
    fields["whiten"] = opts.whiten is not None
    text = " ".join([canonical_token(stmt.op)] + [canonical_token(t) for t in tokens])
    span = stmt.op.span
    state.layers.append(Layer(index=index, name=kind.layer_name(index, fields, written), op=op,
                              inputs=(state.last,), text=text,
                              where=Where(file=span.file, line=span.line, column=span.column), block=block,
                              input_shape=in_shape, output_shape=out, **fields))
    state.shape, state.last = out, index
    return True


def _room_for_one_more(state: _State, stmt, block: str | None) -> bool:
    if state.too_many:  # said once; the layers after it are not checked
        return False
    if len(state.layers) >= MAX_LAYERS:
        chain = [part.split("(")[0] for part in (block or "").split("/") if "(" in part]
        inside = f" (inside {' -> '.join(chain)})" if chain else ""
        state.errors.append(SpecSemanticError(f"the model grows past {MAX_LAYERS:,} layers here{inside}", stmt.span,
                                              "lower the repeat counts", "E228"))
        state.too_many = True
        state.shape = None
        return False
    return True


def _assertion(stmt: AssertStmt, file: str, errors: list) -> Assertion | None:
    metric = stmt.metric.text
    where = Where(file=file, line=stmt.span.line, column=stmt.span.column)
    if stmt.comparison in ("in", "not in"):
        if metric != "ops":
            errors.append(SpecSemanticError(f"`{stmt.comparison} [...]` applies to `ops`, not '{metric}'",
                                            stmt.metric.span, "write `assert ops in [sep, maxpool, gap]`", "E240"))
            return None
        members = []
        for m in stmt.members:
            name = assert_name(m.text)
            if name is None:
                errors.append(SpecSemanticError(f"unknown op '{m.text}' in the list", m.span,
                                                unknown_op_hint(m.text, list(MERGES)), "E241"))
                return None
            members.append(name)
        text = f"assert ops {stmt.comparison} [{', '.join(members)}]"
        return Assertion(metric="ops", comparison=stmt.comparison, value=tuple(members), text=text, where=where)
    if metric not in METRICS:
        hint = did_you_mean(metric, METRICS + ("ops",)) or "metrics: " + ", ".join(METRICS + ("ops",))
        errors.append(SpecSemanticError(f"unknown metric '{metric}'", stmt.metric.span, hint, "E242"))
        return None
    if stmt.value.kind != "number":
        errors.append(SpecSemanticError(f"`assert {metric}` compares with a number, not '{stmt.value.text}'",
                                        stmt.value.span, "write e.g. `assert params <= 80k`", "E243"))
        return None
    value = stmt.value.number
    value = int(value) if value == int(value) else value
    text = f"assert {metric} {stmt.comparison} {stmt.value.canonical()}"
    return Assertion(metric=metric, comparison=stmt.comparison, value=value, text=text, where=where)


def _first_span(spec: Spec):
    from ..errors import Span
    return spec.statements[0].span if spec.statements else Span(spec.file, 1, 1)


def _where_span(where: Where, width: int = 1):
    from ..errors import Span
    return Span(where.file, where.line, where.column, where.column + width)


def _name_from_file(file: str) -> str:
    stem = Path(file).stem if file and not file.startswith("<") else "model"
    return re.sub(r"\W", "_", stem) or "model"
