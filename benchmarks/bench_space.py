#!/usr/bin/env python
"""How long `archdsl space` takes on a space of 10,000 combinations, and where the time goes. A script,
not a test: nothing here asserts a time.

    python benchmarks/bench_space.py                 # 3 rounds of the 10,000-combination space
    python benchmarks/bench_space.py --rounds 1 --json space.json
    python benchmarks/bench_space.py --rounds 1 --small           # smoke run: 2 widths a stage, 80 combinations

The space is specs/record_10_epochs.arch with five choices: three widths of 10 values each, the stages'
kernel (2) and the learning rate (5): 10 x 10 x 10 x 2 x 5 = 10,000 combinations, 2,000 distinct models
(the learning rate is used only in the train section, so each model is analysed once and its variants'
train sections checked on their own). Each round times, in this process: parsing the space, exploring it
(every variant resolved and analysed, asserts checked) and rendering the table; and, as a whole process,
`archdsl space FILE --top 10`. Numbers are medians over rounds. The 1-minute load average is printed at
the start and the end: on a 2-core machine above ~1.5 something else shares the cores.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WIDTHS = {"w1": range(32, 82, 5), "w2": range(64, 164, 10), "w3": range(64, 164, 10)}


def space_text(small: bool = False) -> str:
    text = (ROOT / "specs" / "record_10_epochs.arch").read_text(encoding="utf-8")
    lines = [f"choose {name} in [{', '.join(map(str, list(values)[:2] if small else values))}]"
             for name, values in WIDTHS.items()]
    lines += ["choose k in [3x3, 5x5]", "choose rate in [0.05, 0.1, 0.2, 0.3, 0.4]"]
    text = text.replace("model record_10_epochs", "model record_space\n" + "\n".join(lines))
    for old, new in [("sep 3x3 c same", "sep k c same"), ("sep 3x3 64 same bn gelu\nres(64)", "sep 3x3 w1 same bn gelu\nres(w1)"),
                     ("sep 3x3 128 same bn gelu\nres(128)", "sep 3x3 w2 same bn gelu\nres(w2)"),
                     ("maxpool 2x2                        # 8x8: one layer, the receptive field covers the image here\n"
                      "sep 3x3 128", "maxpool 2x2\nsep 3x3 w3"), ("  lr 0.2", "  lr rate")]:
        assert old in text, old
        text = text.replace(old, new)
    return text


def one_round(path: Path) -> dict:
    from archdsl.analysis.space import explore
    from archdsl.language.parser import parse
    from archdsl.render.space import render
    t0 = time.perf_counter()
    spec = parse(path.read_text(encoding="utf-8"), str(path))
    t1 = time.perf_counter()
    space = explore(spec)
    t2 = time.perf_counter()
    render(space, space.feasible, "table")
    t3 = time.perf_counter()
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "archdsl", "space", str(path), "--top", "10"], check=True,
                   capture_output=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    whole = time.perf_counter() - start
    return {"combinations": len(space.variants), "feasible": len(space.feasible),
            "parse_s": t1 - t0, "explore_s": t2 - t1, "render_s": t3 - t2, "process_s": whole}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--small", action="store_true", help="2 values a width: 80 combinations (a smoke run)")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "record_space.arch"
        path.write_text(space_text(args.small), encoding="utf-8")
        rounds = [one_round(path) for _ in range(args.rounds)]
    result = {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}
    result["explore_ms_per_combination"] = 1000 * result["explore_s"] / result["combinations"]
    result["load_average_end"] = os.getloadavg()[0]
    print(f"{result['combinations']:,.0f} combinations, {result['feasible']:,.0f} feasible")
    print(f"parse {result['parse_s']:.3f} s, explore {result['explore_s']:.2f} s "
          f"({result['explore_ms_per_combination']:.2f} ms a combination), render {result['render_s']:.3f} s; "
          f"`archdsl space FILE --top 10` as a process {result['process_s']:.2f} s (medians of {args.rounds})")
    print(f"load average at end: {result['load_average_end']:.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
