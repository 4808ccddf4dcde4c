#!/usr/bin/env python
"""How long `archdsl rf specs/best.arch` takes as a whole process, and where the time goes. A
script, not a test: nothing here asserts a time.

    python benchmarks/bench_frontend.py                          # 20 rounds, this checkout
    python benchmarks/bench_frontend.py --runs 40 --json fe.json
    python benchmarks/bench_frontend.py --root /tmp/before       # beside another checkout (before/after)
    python benchmarks/bench_frontend.py --runs 1 --warmup 0      # smoke run, a few seconds
    python benchmarks/bench_frontend.py --stack 3000             # a generated spec of 3,000 layers

Sides, each run once a round, in an order rotated round by round (so load that drifts slowly
hits all alike):

  python         `python -c pass`: the interpreter's own start and exit, the floor
  module         `python -m archdsl rf SPEC`, the grammar cache warm
  module_cold    the same with an empty grammar cache each run: the first run after an install or
                 a grammar edit (the grammar is built, then saved)
  script         `archdsl rf SPEC`, the console script that `archdsl` names on PATH
  script_direct  the console script next to this Python, when PATH's `archdsl` is another file
                 (a pyenv shim, say: a shell script that finds the interpreter first)

Every side but `python` runs against each checkout given (--root, repeatable; this one always),
with PYTHONPATH and the working directory set to that checkout. Grammar caches live in a
temporary directory of the benchmark's (XDG_CACHE_HOME), never the user's.

The split: a fresh process per round times, in process, importing the IR (pydantic and its
models), importing lark, archdsl's other imports (what `archdsl rf` loads), the parser (read
from the cache or built), parse, resolve, analyse (table and asserts) and render. Numbers are
medians over rounds; a ratio between checkouts is the median of per-round ratios. The 1-minute
load average is printed at the start and the end: on a 2-core machine above ~1.5 means something
else shares the cores, and absolute numbers are then not absolute.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# run in a fresh process inside a checkout; prints the phases in ms as JSON
SPLIT = r"""
import json, sys, time
t = [time.perf_counter()]
import archdsl.ir
t.append(time.perf_counter())
import lark
t.append(time.perf_counter())
import archdsl.cli
from archdsl import analysis
from archdsl.language import parser
from archdsl.language import resolve
from archdsl.render import tables
t.append(time.perf_counter())
parser._lark()
t.append(time.perf_counter())
spec = parser.parse_file(sys.argv[1])
t.append(time.perf_counter())
model = resolve.resolve(spec)
t.append(time.perf_counter())
stats = analysis.analyze(model)
results = analysis.check_assertions(stats)
t.append(time.perf_counter())
text = tables.render(stats, "table", results)
t.append(time.perf_counter())
phases = ["import_ir", "import_lark", "import_rest", "grammar", "parse", "resolve", "analyse", "render"]
print(json.dumps({p: 1000 * (b - a) for p, a, b in zip(phases, t, t[1:])}))
"""
PHASES = ["import_ir", "import_lark", "import_rest", "grammar", "parse", "resolve", "analyse", "render"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=20, help="timed rounds (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed rounds first (default 3)")
    p.add_argument("--spec", default="specs/best.arch", help="relative to each checkout (default specs/best.arch)")
    p.add_argument("--stack", type=int, metavar="N",
                   help="instead of --spec, a generated spec: N lines of `conv 3x3 8 same relu` on a 32x32 input "
                        "(a long file: work a layer, and one warning said for all the layers it is about)")
    p.add_argument("--root", action="append", default=[], metavar="CHECKOUT",
                   help="another archdsl checkout to measure beside this one (repeatable)")
    p.add_argument("--no-split", action="store_true", help="whole processes only")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        p.error("need --runs >= 1 and --warmup >= 0")

    roots = {"this": ROOT}
    for other in args.root:
        path = Path(other).resolve()
        if not (path / "archdsl" / "__init__.py").is_file():
            p.error(f"{other} is not an archdsl checkout")
        roots[path.name if path.name not in roots else str(path)] = path
    with tempfile.TemporaryDirectory(prefix="bench-frontend-") as scratch:
        if args.stack:
            stack = Path(scratch) / f"stack{args.stack}.arch"
            stack.write_text("input 32x32x3\n" + "conv 3x3 8 same relu\n" * args.stack)
            args.spec = str(stack)
        sides = make_sides(roots, args.spec, Path(scratch))
        results = {"machine": machine(), "args": vars(args), "roots": {k: str(v) for k, v in roots.items()},
                   "sides": {name: side["describe"] for name, side in sides.items()}, "load_start": _load()}
        print(_machine_line(results["machine"]))
        print(f"load average at start {results['load_start']}; sides: {', '.join(sides)}", flush=True)
        times = run_rounds(sides, roots, args)
    results.update(summarise(times, roots))
    results["load_end"] = _load()
    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


# --- the sides ---------------------------------------------------------------------------------

def make_sides(roots: dict[str, Path], spec: str, scratch: Path) -> dict[str, dict]:
    """name -> {"argv", "cwd", "env", "cold" (a fresh grammar cache each run), "describe"}."""
    on_path = shutil.which("archdsl")
    direct = Path(sys.executable).with_name("archdsl")
    scripts = {}
    if on_path:
        scripts["script"] = on_path
    if direct.is_file() and (not on_path or Path(on_path).resolve() != direct.resolve()):
        scripts["script_direct"] = str(direct)
    sides = {"python": {"argv": [sys.executable, "-c", "pass"], "cwd": ROOT, "env": dict(os.environ),
                        "cold": False, "describe": f"{sys.executable} -c pass"}}
    for label, root in roots.items():
        suffix = "" if label == "this" else f"@{label}"
        warm_cache = scratch / f"cache-{len(sides)}"
        warm_cache.mkdir()
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root), *filter(None, [os.environ.get("PYTHONPATH")])]),
               "XDG_CACHE_HOME": str(warm_cache)}
        module = [sys.executable, "-m", "archdsl", "rf", spec]
        sides["module" + suffix] = {"argv": module, "cwd": root, "env": env, "cold": False,
                                    "describe": f"python -m archdsl rf {spec} (in {root})"}
        sides["module_cold" + suffix] = {"argv": module, "cwd": root, "env": env, "cold": True,
                                         "describe": f"python -m archdsl rf {spec}, empty grammar cache (in {root})"}
        for name, script in scripts.items():
            sides[name + suffix] = {"argv": [script, "rf", spec], "cwd": root, "env": env, "cold": False,
                                    "describe": f"{script} rf {spec} (in {root})"}
    return sides


def run_rounds(sides: dict[str, dict], roots: dict[str, Path], args) -> dict:
    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
    split: dict[str, list[dict]] = {label: [] for label in roots}
    for round_ in range(-args.warmup, args.runs):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = run_once(sides[name])
            if round_ >= 0:
                times[name].append(elapsed)
        if not args.no_split:
            for label, root in roots.items():
                phases = split_once(root, args.spec, sides["module" + ("" if label == "this" else f"@{label}")]["env"])
                if round_ >= 0:
                    split[label].append(phases)
        if round_ >= 0 and (round_ + 1) % 5 == 0:
            print(f"  round {round_ + 1}/{args.runs}, load {_load()}", flush=True)
    return {"times": times, "split": split}


def run_once(side: dict) -> float:
    env = side["env"]
    cold = None
    if side["cold"]:
        cold = tempfile.mkdtemp(prefix="cold-cache-")
        env = {**env, "XDG_CACHE_HOME": cold}
    try:
        t0 = time.perf_counter()
        done = subprocess.run(side["argv"], cwd=side["cwd"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        elapsed = time.perf_counter() - t0
    finally:
        if cold:
            shutil.rmtree(cold, ignore_errors=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, side['argv']))} failed ({done.returncode}):\n"
                         f"{done.stderr.decode(errors='replace')[-2000:]}")
    return elapsed * 1000


def split_once(root: Path, spec: str, env: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", SPLIT, spec], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"the split failed in {root}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the numbers -------------------------------------------------------------------------------

def summarise(raw: dict, roots: dict[str, Path]) -> dict:
    sides = {}
    for name, values in raw["times"].items():
        sides[name] = {"median_ms": statistics.median(values), "min_ms": min(values), "max_ms": max(values),
                       "runs_ms": [round(v, 1) for v in values]}
    split = {}
    for label, rounds in raw["split"].items():
        if rounds:
            split[label] = {p: statistics.median(r[p] for r in rounds) for p in PHASES}
            split[label]["in_process_total"] = statistics.median(sum(r[p] for p in PHASES) for r in rounds)
    ratios = {}
    for label in roots:
        if label == "this":
            continue
        for kind in ("module", "module_cold", "script", "script_direct"):
            this, other = raw["times"].get(kind), raw["times"].get(f"{kind}@{label}")
            if this and other:
                ratios[f"{kind}: this / {label}"] = statistics.median(a / b for a, b in zip(this, other))
    return {"times": sides, "split": split, "ratios": ratios}


def report(results: dict) -> None:
    print(f"\n{'side':28s} {'median':>8s} {'min':>8s} {'max':>8s}   (ms, {len(next(iter(results['times'].values()))['runs_ms'])} runs)")
    for name, t in results["times"].items():
        print(f"{name:28s} {t['median_ms']:8.1f} {t['min_ms']:8.1f} {t['max_ms']:8.1f}")
    for label, phases in results["split"].items():
        print(f"\nsplit ({label}), median ms: " + ", ".join(f"{p} {phases[p]:.1f}" for p in PHASES)
              + f"; in process {phases['in_process_total']:.1f}")
    for name, ratio in results["ratios"].items():
        print(f"ratio {name}: {ratio:.2f} (median of per-round ratios)")
    print(f"\nload average: {results['load_start']} at start, {results['load_end']} at end")


def machine() -> dict:
    model = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    versions = {}
    for dist in ("lark", "pydantic", "pydantic_core"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"cpu": model, "cores": cores, "python": platform.python_version(), "executable": sys.executable,
            **versions, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


def _machine_line(m: dict) -> str:
    return (f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, lark {m['lark']}, pydantic {m['pydantic']} "
            f"(core {m['pydantic_core']}); {m['date']}")


def _load() -> str:
    return "%.2f" % os.getloadavg()[0]


if __name__ == "__main__":
    sys.exit(main())
