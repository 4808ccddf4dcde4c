"""Named blocks and the names a layer may use: definitions checked, a use's arguments bound, values substituted.

`block stage(c) { sep 3x3 c same }` then `stage(64)`: inside the body, `c` stands for `64`, as `classes`
stands for the header's count everywhere. A block or parameter name must not be a word of the language
in any case: `Same()` or a parameter `Dm` would otherwise be read (and printed by `fmt`) as the word.
"""
from __future__ import annotations

from ..errors import Span, SpecSemanticError, did_you_mean
from .merges import MERGES
from .options import language_word
from .spec import BlockDef, LayerStmt, ParallelStmt, ResidualStmt, Spec, Token

# the keywords of grammar.lark (tests/test_resolve_names.py checks the list against it); the statement ones
# are offered as did-you-means for an unknown op
STATEMENT_KEYWORDS = ["model", "input", "classes", "block", "assert", "train", "allow", "choose"]
KEYWORDS = STATEMENT_KEYWORDS + ["residual", "shortcut", "parallel", "branch", "in", "not"]


def reserved(name: str) -> str | None:
    """What a name is to the language, its case ignored ("an op", "an option", ...), or None for a free name."""
    word = name.lower()
    return language_word(name) or ("a keyword" if word in KEYWORDS else "a merge" if word in MERGES else None)


def _case_note(name: str) -> str:
    return f" (the language ignores case: '{name}' is '{name.lower()}')" if name != name.lower() else ""


def check_definitions(spec: Spec, errors: list) -> tuple[dict[str, BlockDef], set[str], dict[str, set[str]]]:
    """The blocks by name; the names of those that cannot be used (named like a word of the language: their
    uses are not expanded, one mistake, one message); and by block, its parameters named wrongly (a word of
    the language, or twice): the block is still expanded, so the rest of the file is checked, but its lines
    that use such a parameter are not (what it stands for is unknown). A block named like an op is not
    registered: lines of that op stay layers."""
    blocks: dict[str, BlockDef] = {}
    broken: set[str] = set()
    unusable: dict[str, set[str]] = {}
    for stmt in spec.statements:
        if not isinstance(stmt, BlockDef):
            continue
        name = stmt.name.text
        if name in blocks:
            errors.append(SpecSemanticError(f"block '{name}' is defined twice", stmt.name.span,
                                            f"rename one; the first is on line {blocks[name].span.line}", "E220"))
            continue
        if kind := reserved(name):
            kind = "an op" if kind == "an op" else "a word"
            errors.append(SpecSemanticError(f"'{name}' is {kind} of the language, not a free block name",
                                            stmt.name.span, "choose another name" + _case_note(name), "E220"))
            broken.add(name)
        else:
            blocks[name] = stmt
        for inner in stmt.body:
            if not isinstance(inner, (LayerStmt, ResidualStmt, ParallelStmt)):
                errors.append(SpecSemanticError("a block holds only layers", inner.span,
                                                "move this line out of the block", "E221"))
        seen: dict[str, Token] = {}
        taken = {p.name.text for p in stmt.params} | {b.name.text for b in spec.statements if isinstance(b, BlockDef)}
        for p in stmt.params:
            text = p.name.text
            if reserved(text):
                errors.append(SpecSemanticError(f"parameter name '{text}' is a word of the language", p.name.span,
                                                f"rename it here and in the block's body, e.g. to "
                                                f"{_free_names_near(text, taken)}" + _case_note(text), "E222"))
                unusable.setdefault(name, set()).add(text)
            elif text in seen:
                errors.append(SpecSemanticError(f"block '{name}' has two parameters named '{text}'", p.name.span,
                                                f"rename one; the first is at column {seen[text].span.column}",
                                                "E222"))
                unusable.setdefault(name, set()).add(text)
            seen.setdefault(text, p.name)
    return blocks, broken, unusable


def _free_names_near(name: str, taken: set[str]) -> str:
    """Names like `name` that are free (`stride` -> `strides` or `stride_`), as a hint writes them."""
    near = [n for n in (f"{name}s", f"{name}_", f"{name}_1", f"my_{name}")
            if not reserved(n) and n not in taken][:2]
    return " or ".join(f"`{n}`" for n in near)


def bind(definition: BlockDef, stmt: LayerStmt, env: dict, errors: list) -> dict[str, Token] | None:
    """A use's arguments, by parameter name (defaults filled in), or None after an error."""
    names = [p.name.text for p in definition.params]
    block = definition.name.text
    signature = f"its parameters: ({', '.join(names)})" if names else "it has no parameters"
    bound: dict[str, Token] = {}
    reported = len(errors)
    args = stmt.call_args or []
    for i, arg in enumerate(args):
        value = substitute(arg.value, env, errors)
        if arg.name is None:
            if i >= len(names):
                errors.append(SpecSemanticError(f"block '{block}' takes {_count(len(names), 'argument')}, got "
                                                f"{len(args)}", arg.value.span, signature, "E227"))
                return None
            bound[names[i]] = value
        elif arg.name.text not in names:
            errors.append(SpecSemanticError(f"block '{block}' has no parameter '{arg.name.text}'",
                                            arg.name.span, did_you_mean(arg.name.text, names) or signature, "E227"))
        elif arg.name.text in bound:
            errors.append(SpecSemanticError(f"block '{block}' gets '{arg.name.text}' twice", arg.name.span,
                                            signature, "E227"))
        else:
            bound[arg.name.text] = value
    if len(errors) > reported:  # a misspelled name is the missing one: do not report it missing too
        return None
    for p in definition.params:
        if p.name.text not in bound:
            if p.default is None:
                errors.append(SpecSemanticError(f"block '{block}' needs a value for '{p.name.text}'", stmt.op.span,
                                                f"write e.g. `{block}({p.name.text}=...)`; {signature}", "E227"))
            else:
                bound[p.name.text] = substitute(p.default, env, errors)
    return bound if len(errors) == reported else None


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def substitute(tok: Token, env: dict, errors: list) -> Token:
    """The value a name stands for, as written where the value was written (bound values stay literals)."""
    if tok.kind == "name" and tok.text in env:
        return env[tok.text]
    if tok.kind == "name" and tok.text == "classes":
        errors.append(SpecSemanticError("`classes` is used but not declared", tok.span,
                                        "add a line `classes 10` to the header", "E209"))
    return tok


def substitute_at_use(tokens: list[Token], env: dict, errors: list) -> tuple[list[Token], dict[Span, tuple]]:
    """A layer's tokens with names replaced by their values, placed where the names stand (an error about
    the value points at the layer), and use span -> (name, value as written) to say where a value came from."""
    out, origins = [], {}
    for tok in tokens:
        value = substitute(tok, env, errors)
        if value is not tok:
            origins[tok.span] = (tok.text, value)
            value = Token(value.kind, value.text, tok.span)
        out.append(value)
    return out, origins


def note_origin(error, origins: dict[Span, tuple], too_large: set[Span]) -> bool:
    """Say in an error about a substituted value where the value came from; False when the error is to be
    dropped, as its value is a numeral already reported as too large."""
    if error.span not in origins:
        return True
    name, value = origins[error.span]
    if value.span in too_large:
        return False
    error.message += f" (`{name}` is {value.text}, from line {value.span.line})"
    return True
