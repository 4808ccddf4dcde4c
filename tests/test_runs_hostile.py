"""Run folders that were edited by hand, damaged or made by someone else: `train --resume`, `eval` and `report`
read them without a traceback and write nothing outside the run folder (issue 27).

The truth each test holds archdsl to: what a resume reads and writes is inside its run folder, by names it
derives itself (never a path or a cache folder from state.json); a file that no longer agrees with the run
is named; anything else is one of archdsl's errors, never a traceback.

Data: a generated 8x8 two-class image folder (16 training and 8 test images), a tiny spec, batch 8, two
epochs of two steps; the run is trained once (in-process) and rolled back to its epoch-1 checkpoint, as a kill
during epoch 2 leaves it. Everything runs in-process.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from test_faults import write_images as faults_images
from test_runs import cli, error_line  # archdsl in-process; the one error of a failed command

pytestmark = pytest.mark.tf

SPEC = """\
model tiny
input 8x8x3
classes 2
conv 3x3 4 same bn relu
sep 3x3 8 same drop .1 bn relu
gap
dense classes
softmax
train {
  batch 8
  epochs 2
  augment flip
}
"""


def write_images(root: Path) -> Path:
    return faults_images(root, per_class=(8, 4), side=8)




def edit_states(run: Path, **values) -> None:
    """Set top-level keys (or settings.KEY with settings__KEY) in state.json and every epoch-N.json."""
    for path in sorted((run / "checkpoint").glob("*.json")):
        state = json.loads(path.read_text())
        for key, value in values.items():
            if key.startswith("settings__"):
                state["settings"][key.removeprefix("settings__")] = value
            else:
                state[key] = value
        path.write_text(json.dumps(state))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(folder, pristine run rolled back to epoch 1 of 2, the spec, the data folder, the data cache)."""
    folder = tmp_path_factory.mktemp("hostile")
    spec = folder / "tiny.arch"
    spec.write_text(SPEC)
    data = write_images(folder / "pets")
    cache = folder / "cache"
    status, _, err = cli("train", spec, "--data", data, "--data-dir", cache, "--limit", 16, "--test-limit", 8,
                         "--out", folder / "runs", "--verbose", 0)
    assert status == 0, err
    (run,) = (folder / "runs" / "tiny").iterdir()
    checkpoint = run / "checkpoint"
    shutil.copyfile(checkpoint / "epoch-0001.json", checkpoint / "state.json")  # as a kill in epoch 2 leaves it
    (checkpoint / "epoch-0002.json").unlink()
    (checkpoint / "epoch-0002.keras").unlink()
    return folder, run, spec, data, cache


@pytest.fixture
def run(setup, tmp_path) -> Path:
    """A fresh copy of the pristine run."""
    copy = tmp_path / "run"
    shutil.copytree(setup[1], copy, symlinks=True)
    return copy


# --- item 7: the data cache is the command line's (or the default), never a folder named by the state -----

def test_resume_and_eval_never_write_the_cache_folder_the_state_names(setup, run, tmp_path, monkeypatch):
    elsewhere, default = tmp_path / "elsewhere", tmp_path / "default-cache"
    monkeypatch.setenv("ARCHDSL_DATA", str(default))
    edit_states(run, settings__data_dir=str(elsewhere))
    status, out, err = cli("train", "--resume", run, "--verbose", 0)
    assert status == 0, err
    assert not elsewhere.exists() and (default / "decoded").is_dir()
    shutil.rmtree(default)
    edit_states(run, settings__data_dir=str(elsewhere))
    status, out, err = cli("eval", run)
    assert status == 0, err
    assert not elsewhere.exists() and (default / "decoded").is_dir()


# --- item 10: an edited spec.arch is named, and the run goes on with resolved.json ----------------------------

def test_an_edited_spec_copy_is_named_and_the_run_resumes_with_resolved_json(setup, run):
    cache = setup[4]
    (run / "spec.arch").write_text(SPEC.replace("sep 3x3 8", "sep 3x3 12"))  # weights of 8 filters would not load
    status, out, err = cli("train", "--resume", run, "--data-dir", cache, "--verbose", 0)
    assert status == 0, err
    assert (f"warning: {run / 'spec.arch'} differs from {run / 'resolved.json'} (it describes another model or "
            "recipe): resuming with resolved.json") in err
    assert json.loads((run / "checkpoint" / "state.json").read_text())["epoch"] == 2
    # untouched, it resumes without a word (the copy is the spec the run was started with)
    copy = run.parent / "untouched"
    shutil.copytree(setup[1], copy)
    status, out, err = cli("train", "--resume", copy, "--data-dir", cache, "--verbose", 0)
    assert status == 0 and "warning" not in err, err


# --- item 16 (part): a resolved.json edited after the checkpoint was written is E525, naming the file -----------

def test_an_edited_resolved_json_is_e525_naming_it(setup, run):
    cache = setup[4]
    resolved = json.loads((run / "resolved.json").read_text())
    resolved["layers"][0]["filters"] = 6  # the checkpoint holds 4 filters
    (run / "resolved.json").write_text(json.dumps(resolved))
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    status, out, err = cli("train", "--resume", run, "--data-dir", cache, "--verbose", 0)
    line = error_line(status, err)
    assert line.startswith(f"error[E525]: checkpoint {run / 'checkpoint' / 'epoch-0001.keras'} does not fit the "
                           f"model of {run / 'resolved.json'}"), line
    assert "Traceback" not in err and {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before


# --- random damaged run folders: report and train --resume, in-process -------------------------------------------
#
# Each example copies the pristine run into a fresh sandbox, damages 1-3 of its files or folders (truncated,
# garbage bytes, JSON nested past Python's recursion limit, a value of the wrong type or a hostile path in any
# field of a JSON file, a key deleted, a file or folder missing, or replaced by a link to a copy outside the run),
# then runs `report SPEC RUN -o out/report.html` and `train --resume RUN` with flags drawn from --epochs 0/1/2,
# --limit 8/16 and --data-dir (else the default cache, $ARCHDSL_DATA, set to the sandbox). Each must end with a
# status and, if it failed, one archdsl error (never an exception); while they run, an audit hook records every
# file Python opens for writing, renames, creates or removes: each must be in the run folder, the report's folder,
# a data cache or the system's temporary folder outside the sandbox (TensorFlow's own), and `train --resume` must
# not open anything in the sandbox's outside/ folder, whatever the links and the state say.
# ARCHDSL_HOSTILE_RUN_EXAMPLES (default 50) and, for the slow profile, ARCHDSL_HOSTILE_RUN_EXAMPLES_LONG (1000) set
# the counts; ARCHDSL_HOSTILE_RUN_RANDOM=1 draws new examples (the default profile is derandomized).

DAMAGE_EXAMPLES = int(os.environ.get("ARCHDSL_HOSTILE_RUN_EXAMPLES", "50"))
DAMAGE_EXAMPLES_LONG = int(os.environ.get("ARCHDSL_HOSTILE_RUN_EXAMPLES_LONG", "1000"))
OUTCOMES: Counter = Counter()  # (command, outcome) over the session; ARCHDSL_HOSTILE_RUN_LOG=FILE appends them

JSON_FILES = ("checkpoint/state.json", "checkpoint/epoch-0001.json", "metrics.json", "resolved.json")
OTHER_FILES = ("history.csv", "spec.arch", "checkpoint/epoch-0001.keras", "best.keras", "last.keras")
FOLDERS = ("checkpoint", "tb", "tb/train")
HOSTILE_TEXT = ["<OUTSIDE>/foreign.keras", "<OUTSIDE>/cache", "<OUTSIDE>", "../outside/foreign.keras",
                "epoch-0001.keras", "epoch-0002.keras", "../../../../../../../../tmp", "", "cifar10", "<DATA>"]

leaves = (st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats()
          | st.sampled_from([0, 1, 2, -1, 1e308, -1e308, 0.5, 2**64]) | st.text(max_size=12)
          | st.sampled_from(HOSTILE_TEXT))
json_values = st.recursive(leaves, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                          max_size=3), max_leaves=6)
damages = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(JSON_FILES + OTHER_FILES), st.floats(0, 1)),
    st.tuples(st.just("garbage"), st.sampled_from(JSON_FILES + OTHER_FILES), st.binary(max_size=64)),
    st.tuples(st.just("nested"), st.sampled_from(JSON_FILES), st.integers(0, 2**16), st.integers(900, 200_000)),
    st.tuples(st.just("value"), st.sampled_from(JSON_FILES), st.integers(0, 2**16), json_values),
    st.tuples(st.just("delete key"), st.sampled_from(JSON_FILES), st.integers(0, 2**16)),
    st.tuples(st.just("missing"), st.sampled_from(JSON_FILES + OTHER_FILES + FOLDERS)),
    st.tuples(st.just("link out"), st.sampled_from(JSON_FILES + OTHER_FILES + FOLDERS), st.booleans()),
)
resume_flags = st.tuples(st.sampled_from([[], [], [], ["--epochs", "0"], ["--epochs", "1"], ["--epochs", "2"]]),
                         st.sampled_from([[], [], ["--limit", "8"], ["--limit", "16"]]), st.booleans())


def json_paths(value, path=()):
    """Every (path) of a JSON value: keys and indexes, the value itself first."""
    yield path
    if isinstance(value, dict):
        for k, v in value.items():
            yield from json_paths(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from json_paths(v, path + (i,))


def damage(run: Path, outside: Path, data: Path, what: tuple) -> None:
    kind, name = what[0], what[1]
    target = run / name

    def text_of(value) -> str:
        text = json.dumps(value)
        return text.replace("<OUTSIDE>", str(outside)).replace("<DATA>", str(data))

    if kind == "missing":
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
        return
    if kind == "link out":
        if not (target.exists() or target.is_symlink()):
            return
        away = outside / name.replace("/", "_")
        if away.exists() or away.is_symlink():
            return
        if what[2]:  # the same content, moved out and linked back (a keras file keeps its checksum)
            os.rename(target, away)
        elif target.is_dir():
            shutil.rmtree(target)  # a dangling link to a folder outside
        else:
            target.unlink()
        target.symlink_to(away)
        return
    if not target.is_file():
        return
    if kind == "truncate":
        blob = target.read_bytes()
        target.write_bytes(blob[:int(len(blob) * what[2])])
    elif kind == "garbage":
        target.write_bytes(what[2])
    elif kind == "nested":
        nested = "[" * what[3] + "]" * what[3]
        try:
            doc = json.loads(target.read_text())
        except (ValueError, RecursionError):
            doc = None
        paths = [p for p in json_paths(doc) if p] if isinstance(doc, (dict, list)) else []
        if not paths:
            target.write_text(nested)
            return
        _set(doc, paths[what[2] % len(paths)], "<NESTED>")
        target.write_text(json.dumps(doc).replace('"<NESTED>"', nested, 1))
    elif kind in ("value", "delete key"):
        try:
            doc = json.loads(target.read_text())
        except (ValueError, RecursionError):
            return
        paths = list(json_paths(doc))
        path = paths[what[2] % len(paths)]
        if kind == "value":
            if not path:
                target.write_text(text_of(what[3]))
                return
            _set(doc, path, what[3])
        elif path:
            parent = doc
            for p in path[:-1]:
                parent = parent[p]
            del parent[path[-1]]
        target.write_text(text_of(doc))


def _set(doc, path, value) -> None:
    for p in path[:-1]:
        doc = doc[p]
    doc[path[-1]] = value


class Watch:
    """An audit hook (installed once; audit hooks cannot be removed) recording, while active, each file
    Python opens for writing, creates, renames, links or removes, and each file it opens at all."""

    hook_installed = False
    active: "Watch | None" = None

    def __init__(self):
        self.written: list[str] = []
        self.opened: list[str] = []

    @classmethod
    def install(cls) -> None:
        if not cls.hook_installed:
            sys.addaudithook(cls._hook)
            cls.hook_installed = True

    @staticmethod
    def _hook(event, args):
        watch = Watch.active
        if watch is None:
            return
        try:
            if event == "open":
                path, mode, flags = args
                if not isinstance(path, (str, bytes)):
                    return
                real = os.path.realpath(os.fsdecode(path))
                watch.opened.append(real)
                writes = (any(c in mode for c in "wax+") if isinstance(mode, str)
                          else bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND)))
                if writes:
                    watch.written.append(real)
            elif event in ("os.rename", "os.replace"):  # src, dst, src_dir_fd, dst_dir_fd
                watch.written += [_real_parent(args[0], args[2]), _real_parent(args[1], args[3])]
            elif event in ("os.link", "os.symlink"):
                watch.written.append(_real_parent(args[1]))
            elif event in ("os.remove", "os.rmdir", "shutil.rmtree"):  # path, dir_fd
                watch.written.append(_real_parent(args[0], args[1]))
            elif event == "os.mkdir":  # path, mode, dir_fd
                watch.written.append(_real_parent(args[0], args[2]))
            elif event in ("os.truncate", "os.chmod"):
                watch.written.append(_real_parent(args[0]))
        except Exception:  # an audit hook must never fail the operation it watches
            pass

    def __enter__(self):
        Watch.active = self
        return self

    def __exit__(self, *exc):
        Watch.active = None


def _real_parent(path, dir_fd=None) -> str:
    """The real path of `path`'s folder, joined with its name (a link itself is what is renamed or removed);
    a relative path is relative to `dir_fd` if one is given (shutil.rmtree works so), else to the cwd."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        return "<fd>"
    path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    path = os.path.abspath(path)
    return os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))


def _under(path: str, roots) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def run_in_sandbox(command: list, allowed: list[str], forbidden: str) -> tuple[int, str, str, Watch]:
    """`archdsl COMMAND` in-process, watched; a traceback (any exception archdsl did not turn into an error)
    fails the test."""
    with Watch() as watch:
        try:
            status, out, err = cli(*command)
        except BaseException as exc:  # noqa: BLE001 - the point: nothing but archdsl's errors
            import traceback
            pytest.fail(f"archdsl {' '.join(map(str, command))} raised {type(exc).__name__}:\n"
                        + "".join(traceback.format_exception(exc)))
    tmp = os.path.realpath(tempfile.gettempdir())
    for path in watch.written:
        inside = _under(path, allowed) or (_under(path, [tmp]) and not _under(path, [forbidden]))
        home_cache = _under(path, [os.path.realpath(os.path.expanduser("~/.cache/archdsl/grammar"))])
        assert inside or home_cache, f"archdsl {command[0]} wrote {path}"
    return status, out, err, watch


def check_damaged_run(setup, damaged: list[tuple], flags) -> None:
    folder, pristine, spec, data, cache = setup
    Watch.install()
    sandbox = Path(tempfile.mkdtemp(prefix="damaged-", dir=folder))
    try:
        run, outside, cwd, out = (sandbox / n for n in ("run", "outside", "cwd", "out"))
        shutil.copytree(pristine, run, symlinks=True)
        for d in (outside, cwd, out):
            d.mkdir()
        shutil.copyfile(pristine / "checkpoint" / "epoch-0001.keras", outside / "foreign.keras")
        for what in damaged:
            damage(run, outside, data, what)
            OUTCOMES["damage", what[0]] += 1
        before = {str(p): p.read_bytes() for p in outside.rglob("*") if p.is_file() and not p.is_symlink()}
        default_cache = sandbox / "default-cache"
        allowed = [os.path.realpath(p) for p in (run, out, cache, default_cache)]
        epochs, limit, named_cache = flags
        old_cwd, old_data = os.getcwd(), os.environ.get("ARCHDSL_DATA")
        os.chdir(cwd)  # a relative path in the state resolves here, and nothing may appear here
        os.environ["ARCHDSL_DATA"] = str(default_cache)
        try:
            results = [("report", run_in_sandbox(["report", spec, run, "-o", out / "report.html"], allowed,
                                                 str(sandbox))),
                       ("train --resume", run_in_sandbox(["train", "--resume", run, "--verbose", 0, *epochs, *limit,
                                                          *(["--data-dir", cache] if named_cache else [])],
                                                         allowed, str(sandbox)))]
        finally:
            os.chdir(old_cwd)
            if old_data is None:
                del os.environ["ARCHDSL_DATA"]
            else:
                os.environ["ARCHDSL_DATA"] = old_data
        for command, (status, out_text, err, watch) in results:
            if status != 0:
                codes = [line.split("]")[0].split("[")[1] for line in err.splitlines() if line.startswith("error[")]
                assert len(codes) == 1, f"{command}: {err}"
                OUTCOMES[command, codes[0]] += 1
            else:
                OUTCOMES[command, "ok"] += 1
            if command.startswith("train"):
                read_outside = [p for p in watch.opened if _under(p, [os.path.realpath(outside)])]
                assert not read_outside, f"train --resume read {read_outside[0]} (outside the run)"
        assert list(cwd.iterdir()) == []
        after = {str(p): p.read_bytes() for p in outside.rglob("*") if p.is_file() and not p.is_symlink()}
        assert after == before
    finally:
        shutil.rmtree(sandbox, ignore_errors=True)
        if OUTCOMES["report", "ok"] % 20 == 0 and "keras" in sys.modules:  # every 20 examples or so
            sys.modules["keras"].backend.clear_session()


# no shrinking: an example trains a model, and shrinking one took hypothesis more than five minutes
DAMAGE = dict(deadline=None, derandomize=not os.environ.get("ARCHDSL_HOSTILE_RUN_RANDOM"), database=None,
              phases=[Phase.explicit, Phase.generate],
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                     HealthCheck.function_scoped_fixture])


@settings(max_examples=DAMAGE_EXAMPLES, **DAMAGE)
@given(damaged=st.lists(damages, min_size=1, max_size=3), flags=resume_flags)
def test_damaged_run_folders_give_archdsl_errors_and_stay_in_their_folder(setup, damaged, flags):
    check_damaged_run(setup, damaged, flags)


@pytest.mark.slow
@settings(max_examples=DAMAGE_EXAMPLES_LONG, **DAMAGE)
@given(damaged=st.lists(damages, min_size=1, max_size=3), flags=resume_flags)
def test_damaged_run_folders_long(setup, damaged, flags):
    check_damaged_run(setup, damaged, flags)


def teardown_module(module) -> None:
    """The outcomes, for docs/testing.md: printed (pytest -s) and appended to $ARCHDSL_HOSTILE_RUN_LOG."""
    if not OUTCOMES:
        return
    lines = [f"{n} {command}: {outcome}" for (command, outcome), n in sorted(OUTCOMES.items())]
    examples = sum(n for (command, _), n in OUTCOMES.items() if command == "report")
    summary = f"damaged run folders: {examples} examples\n" + "\n".join(lines) + "\n"
    print("\n" + summary)
    if os.environ.get("ARCHDSL_HOSTILE_RUN_LOG"):
        with open(os.environ["ARCHDSL_HOSTILE_RUN_LOG"], "a") as f:
            f.write(summary)
