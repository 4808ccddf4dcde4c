"""The raise sites of archdsl/ agree with the registry of error codes (archdsl/error_codes.py).

Read from the source (its AST), not by running it, so a message no test reaches is checked too.
Every string literal Ennn in archdsl/ must be a code given to an error:
- `code="E523"` (or `code="E210" if ... else "E211"`) in a call of an error class, or its 4th positional
  argument (`SpecSemanticError(message, span, hint, "E206")`);
- `default_code = "E651"` in the body of an error class;
- the default of a function's `code` parameter (`def fail(tok, message, hint=None, code="E210")`), a
  wrapper that passes `code` on to an error class, and the `code` argument of a call of such a
  wrapper (by name: `fail(...)` in ops/ is the callback resolve.py's `fail` is passed as);
- or compared with (`exc.code == "E523"`): a mention, only checked to be registered.
Anything else fails here: this test cannot tell which class raises it (extend `scan` if it is right).

Each code must be registered and raised as its stage's class (E2xx as SpecSemanticError, E5xx as
RunError, ...; a subclass of it is fine, `raised_as` in the registry names an exception), and every
registered code must be raised somewhere, or be `reserved`: the default code of a class that every
message gives a more precise code, which a call of that class without a code would then carry.
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from archdsl import errors
from archdsl.error_codes import CODES, STAGES

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "archdsl"
REGISTRY = PACKAGE / "error_codes.py"
CODE = re.compile(r"E\d{3}")
CODE_POSITION = 3  # ArchError(message, span, hint, code, source)
BASE_CLASSES = {name: [c.__name__ for c in cls.__mro__ if issubclass(c, errors.ArchError)]
                for name, cls in vars(errors).items() if isinstance(cls, type) and issubclass(cls, errors.ArchError)}
# classes made with other arguments than ArchError's: ArchErrors(errors) carries its first error's code
OTHER_ARGUMENTS = {name for name in BASE_CLASSES if getattr(errors, name).__init__ is not errors.ArchError.__init__}


@dataclass
class Site:
    where: str          # path:line
    code: str
    classes: list[str]  # the error classes it is raised as, each with its bases: [[DotNotFound, UsageError, ...]]
    how: str


@dataclass
class Scan:
    sites: list[Site] = field(default_factory=list)               # codes given to an error
    bases: dict[str, list[str]] = field(default_factory=dict)     # error class -> it and its bases
    defaults: dict[str, str] = field(default_factory=dict)        # error class -> its default code
    default_sites: dict[str, list[str]] = field(default_factory=dict)  # error class -> where it is made without a code
    mentions: list[Site] = field(default_factory=list)            # codes compared with
    strays: list[str] = field(default_factory=list)               # codes in a place the scan does not know

    def raised(self) -> dict[str, list[str]]:
        """code -> where it is raised: given explicitly, or as the default of a class made without one."""
        found: dict[str, list[str]] = {}
        for site in self.sites:
            found.setdefault(site.code, []).append(site.where)
        for cls, places in self.default_sites.items():
            found.setdefault(self.defaults[cls], []).extend(places)
        return found


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _params(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.arg]:
    return [*fn.args.posonlyargs, *fn.args.args]


def _code_default(fn) -> ast.expr | None:
    """The default value of `fn`'s `code` parameter, if it has one."""
    positional = _params(fn)
    defaults = dict(zip([a.arg for a in positional[len(positional) - len(fn.args.defaults):]], fn.args.defaults))
    defaults.update({a.arg: d for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None})
    return defaults.get("code")


def _passes_code(call: ast.Call, position: int | None) -> bool:
    """Whether `call` passes the name `code` as its `code` argument."""
    if any(k.arg == "code" and isinstance(k.value, ast.Name) and k.value.id == "code" for k in call.keywords):
        return True
    return position is not None and len(call.args) > position and \
        isinstance(call.args[position], ast.Name) and call.args[position].id == "code"


def scan(sources: dict[str, str]) -> Scan:
    """The error codes written in `sources` (path -> Python text), and where and as what each is raised."""
    trees = {path: ast.parse(text, path) for path, text in sources.items()}
    result = Scan()

    # the error classes: archdsl.errors' and their subclasses anywhere (DotNotFound(UsageError))
    bases = result.bases = {name: list(mro) for name, mro in BASE_CLASSES.items() if name not in OTHER_ARGUMENTS}
    result.defaults = {name: getattr(errors, name).default_code for name in bases}
    classes = [n for tree in trees.values() for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
    changed = True
    while changed:
        changed = False
        for node in classes:
            parent = next((_name(b) for b in node.bases if _name(b) in bases), None)
            own_init = any(isinstance(s, ast.FunctionDef) and s.name == "__init__" for s in node.body)
            if parent and node.name not in bases and node.name not in OTHER_ARGUMENTS and not own_init:
                bases[node.name] = [node.name, *bases[parent]]
                result.defaults[node.name] = result.defaults[parent]
                changed = True
    for node in classes:
        for stmt in node.body:
            if node.name in bases and isinstance(stmt, ast.Assign) and \
                    [_name(t) for t in stmt.targets] == ["default_code"] and isinstance(stmt.value, ast.Constant):
                result.defaults[node.name] = stmt.value.value

    # wrappers: functions with a `code` parameter that they pass on to an error class (or another wrapper)
    functions = [(path, n) for path, tree in trees.items() for n in ast.walk(tree)
                 if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and "code" in
                 [a.arg for a in (*_params(n), *n.args.kwonlyargs)]]
    wrappers: dict[int, tuple[str, str, int | None, set[str]]] = {}  # id(def) -> (path, name, position, classes)
    for path, fn in functions:
        names = [a.arg for a in _params(fn)]
        wrappers[id(fn)] = (path, fn.name, names.index("code") if "code" in names else None, set())
    changed = True
    while changed:
        changed = False
        for path, fn in functions:
            found = wrappers[id(fn)][3]
            for call in (n for n in ast.walk(fn) if isinstance(n, ast.Call)):
                name = _name(call.func)
                targets = [{name}] if name in bases and _passes_code(call, CODE_POSITION) else \
                    [w[3] for w in _wrappers_called(wrappers, path, name) if _passes_code(call, w[2])]
                for target in targets:
                    if not target <= found:
                        found |= target
                        changed = True

    def classes_of(names) -> list[list[str]]:
        return [bases[n] for n in sorted(names)]

    for path, tree in trees.items():
        parent_of = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in bases and len(node.args) <= CODE_POSITION \
                    and not any(k.arg in ("code", None) for k in node.keywords) \
                    and not any(isinstance(a, ast.Starred) for a in node.args):
                result.default_sites.setdefault(_name(node.func), []).append(f"{path}:{node.lineno}")
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and CODE.fullmatch(node.value)):
                continue
            where, code = f"{path}:{node.lineno}", node.value
            arg = node
            while isinstance(parent_of.get(arg), ast.IfExp) and arg is not parent_of[arg].test:
                arg = parent_of[arg]  # code="E210" if ... else "E211"
            parent = parent_of.get(arg)
            site = None
            if isinstance(parent, ast.keyword) and parent.arg == "code" and isinstance(parent_of[parent], ast.Call):
                call = parent_of[parent]
                name = _name(call.func)
                if name in bases:
                    site = Site(where, code, classes_of([name]), "code=")
                else:
                    called = _wrappers_called(wrappers, path, name)
                    if called and all(w[3] for w in called):
                        site = Site(where, code, classes_of(set().union(*(w[3] for w in called))), f"{name}(code=)")
            elif isinstance(parent, ast.Call) and arg in parent.args:
                name, position = _name(parent.func), parent.args.index(arg)
                if name in bases and position == CODE_POSITION:
                    site = Site(where, code, classes_of([name]), "positional")
                elif name not in bases:
                    called = [w for w in _wrappers_called(wrappers, path, name) if w[2] == position]
                    if called and all(w[3] for w in called):
                        site = Site(where, code, classes_of(set().union(*(w[3] for w in called))), f"{name}(...)")
            elif isinstance(parent, ast.Assign) and [_name(t) for t in parent.targets] == ["default_code"] \
                    and isinstance(parent_of.get(parent), ast.ClassDef) and parent_of[parent].name in bases:
                continue  # a class's default (in `defaults`): raised where the class is made without a code
            elif isinstance(parent, ast.arguments):
                fn = parent_of[parent]
                if id(fn) in wrappers and _code_default(fn) is arg and wrappers[id(fn)][3]:
                    site = Site(where, code, classes_of(wrappers[id(fn)][3]), f"{fn.name}(code=...) default")
            elif isinstance(parent, ast.Compare) or (isinstance(parent, (ast.Tuple, ast.List, ast.Set))
                                                     and isinstance(parent_of.get(parent), ast.Compare)):
                result.mentions.append(Site(where, code, [], "compared"))
                continue
            if site is None:
                result.strays.append(f"{where}: {code}")
            else:
                result.sites.append(site)
    return result


def _wrappers_called(wrappers, path: str, name: str | None) -> list[tuple]:
    """The wrappers a call of `name` may be: those of its module, else those of that name anywhere."""
    named = [w for w in wrappers.values() if w[1] == name]
    local = [w for w in named if w[0] == path]
    return local or named


def check(result: Scan) -> list[str]:
    """Every disagreement of the scanned source with the registry."""
    problems = [f"{stray}: a code where the scan cannot tell its error class" for stray in result.strays]
    for site in result.sites + result.mentions:
        if site.code not in CODES:
            problems.append(f"{site.where}: {site.code} is not in archdsl/error_codes.py")
        elif site.classes and not all(CODES[site.code].error_class in mro for mro in site.classes):
            raised = " or ".join(mro[0] for mro in site.classes)
            problems.append(f"{site.where}: {site.code} raised as {raised}; its stage's class is "
                            f"{CODES[site.code].error_class}")
    for cls, code in result.defaults.items():
        if code not in CODES:
            problems.append(f"{cls}.default_code {code} is not in archdsl/error_codes.py")
        elif CODES[code].error_class not in result.bases[cls]:
            problems.append(f"{cls}.default_code {code}: its stage's class is {CODES[code].error_class}")
    raised = result.raised()
    for code, entry in CODES.items():
        if entry.reserved and code in raised:
            problems.append(f"{code} is reserved (no message carries it) but raised at {', '.join(raised[code])}"
                            + (" (the class's default code: give it a code)" if code in result.defaults.values() else ""))
        elif not entry.reserved and code not in raised:
            problems.append(f"{code} is registered but raised nowhere (remove it, or mark it reserved)")
    return problems


@pytest.fixture(scope="module")
def archdsl_scan() -> Scan:
    sources = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
               for path in sorted(PACKAGE.rglob("*.py")) if path != REGISTRY}
    return scan(sources)


def test_the_scan_finds_every_code_written(archdsl_scan):
    assert len(archdsl_scan.sites) >= 140
    assert not archdsl_scan.strays, archdsl_scan.strays
    written = {m for path in PACKAGE.rglob("*.py") if path != REGISTRY
               for m in re.findall(r"""["'](E\d{3})["']""", path.read_text(encoding="utf-8"))}
    found = {s.code for s in archdsl_scan.sites + archdsl_scan.mentions} | set(archdsl_scan.defaults.values())
    assert found == written, sorted(found ^ written)


def test_the_raise_sites_agree_with_the_registry(archdsl_scan):
    problems = check(archdsl_scan)
    assert not problems, "\n".join(problems)


def test_the_registry_is_well_formed():
    prefixes = [stage.prefix for stage in STAGES]
    assert prefixes == sorted(set(prefixes))
    for code, entry in CODES.items():
        assert entry.code == code and CODE.fullmatch(code), code
        assert code[:2] in prefixes, code
        assert entry.error_class in BASE_CLASSES, (code, entry.error_class)
        assert entry.meaning.strip() and entry.fix.strip(), code
    for stage in STAGES:
        assert stage.error_class in BASE_CLASSES
        assert getattr(errors, stage.error_class).default_code.startswith(stage.prefix)


def test_an_unregistered_code_is_refused_where_it_is_made():
    with pytest.raises(AssertionError, match="'E5O1' is not in archdsl/error_codes.py"):
        errors.RunError("cannot write x", code="E5O1")
    with pytest.raises(AssertionError, match="Typo.default_code: error code 'E699'"):
        type("Typo", (errors.UsageError,), {"default_code": "E699"})
    assert errors.RunError("cannot write x", code="E501").code == "E501"


CAUGHT = '''
from ..errors import RunError, SpecSemanticError, UsageError

class Missing(UsageError):
    default_code = "E651"

def fail(message, hint=None, code="E230"):
    errors.append(SpecSemanticError(message, None, hint, code))

def f(x):
    fail("x", "hint", "E231")                       # a wrapper's positional code
    fail("x", code="E523")                          # a RunError's code, raised as SpecSemanticError
    raise RunError("x", code="E502" if x else "E501")   # a typo
    raise UsageError("x")                           # E600 is reserved
    raise Missing("x")
    raise SpecSemanticError("x", None, None, "E206")
    table = {"E207": 1}                             # a code where the scan cannot tell its class
'''


def test_the_check_catches_typos_wrong_classes_and_strays():
    result = scan({"archdsl/fake.py": CAUGHT})
    assert sorted((s.code, s.how) for s in result.sites) == [
        ("E206", "positional"), ("E230", "fail(code=...) default"), ("E231", "fail(...)"),
        ("E501", "code="), ("E502", "code="), ("E523", "fail(code=)")]
    problems = check(result)
    assert "archdsl/fake.py:17: E207: a code where the scan cannot tell its error class" in problems
    assert "archdsl/fake.py:13: E502 is not in archdsl/error_codes.py" in problems
    assert "archdsl/fake.py:12: E523 raised as SpecSemanticError; its stage's class is RunError" in problems
    assert "E600 is reserved (no message carries it) but raised at archdsl/fake.py:14 (the class's default code: " \
           "give it a code)" in problems
    assert not [p for p in problems if p.startswith(("archdsl/fake.py:11", "archdsl/fake.py:15", "archdsl/fake.py:16",
                                                       "Missing"))]
    assert "E651 is registered but raised nowhere (remove it, or mark it reserved)" not in problems  # Missing("x")
    assert "E236 is registered but raised nowhere (remove it, or mark it reserved)" in problems


# ---------------------------------------------------------------- warning codes (W3xx)
#
# A warning is no exception: its code is the first argument of `Finding(...)` (archdsl/analysis/warnings.py) or
# `SpecWarning(...)`, or their `code=`. Any other literal Wnnn in archdsl/ is a stray (a hint that names a code
# writes it inside a longer string, which is no code literal).

WARNING_CODE = re.compile(r"W\d{3}")
WARNING_MAKERS = {"Finding", "SpecWarning"}


def scan_warnings(sources: dict[str, str]) -> tuple[dict[str, list[str]], list[str]]:
    """(code -> where a warning is made with it, the strays) of `sources` (path -> Python text)."""
    made: dict[str, list[str]] = {}
    strays = []
    for path, text in sources.items():
        tree = ast.parse(text, path)
        parent_of = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and isinstance(node.value, str) and WARNING_CODE.fullmatch(node.value)):
                continue
            parent = parent_of.get(node)
            call = parent_of.get(parent) if isinstance(parent, ast.keyword) and parent.arg == "code" else parent
            given = isinstance(call, ast.Call) and _name(call.func) in WARNING_MAKERS and \
                (parent is not call or (call.args and call.args[0] is node))
            if given:
                made.setdefault(node.value, []).append(f"{path}:{node.lineno}")
            else:
                strays.append(f"{path}:{node.lineno}: {node.value}")
    return made, strays


def test_every_warning_code_is_registered_and_made():
    from archdsl.error_codes import WARNING_STAGE, WARNINGS
    sources = {path.relative_to(ROOT).as_posix(): path.read_text(encoding="utf-8")
               for path in sorted(PACKAGE.rglob("*.py")) if path != REGISTRY}
    made, strays = scan_warnings(sources)
    assert not strays, strays
    assert set(made) <= set(WARNINGS), sorted(set(made) - set(WARNINGS))
    assert set(WARNINGS) <= set(made), f"registered but made nowhere: {sorted(set(WARNINGS) - set(made))}"
    written = {m for text in sources.values() for m in re.findall(r"""["'](W\d{3})["']""", text)}
    assert written == set(made)
    for code, entry in WARNINGS.items():
        assert entry.code == code and entry.stage is WARNING_STAGE and not entry.reserved
        assert entry.meaning.strip() and entry.fix.strip() and f"allow {code}" in entry.fix, code
    assert not set(WARNINGS) & set(CODES)


def test_the_warning_scan_catches_strays_and_unregistered_codes():
    made, strays = scan_warnings({"archdsl/fake.py": (
        'Finding("W301", layer, "d", "h", ())\n'
        'SpecWarning(code="W399", message="x", hint=None, span=None, layers=())\n'
        'checked = {"W302": set()}\n'
        'hint = "write `allow W301`"\n')})
    assert made == {"W301": ["archdsl/fake.py:1"], "W399": ["archdsl/fake.py:2"]}
    assert strays == ["archdsl/fake.py:3: W302"]
