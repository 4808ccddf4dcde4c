#!/usr/bin/env python
"""One worker vs two multi-worker processes on this host, and mixed precision: what `archdsl train` does.

    python benchmarks/bench_distributed.py --repeats 2 --json dist.json
    python benchmarks/bench_distributed.py --configs 1w,2w-global128 --limit 512 --repeats 1   # quick look

Every configuration is a real `archdsl train` (a fresh process per worker, validation and
checkpoints included) of `--spec` on the first `--limit` training and `--test-limit` test
images for `--epochs` epochs. Reported per run: images/s of the epochs after the first (the
first traces the graph; metrics.json's `images_per_second_after_epoch_1`), the wall time of
the whole command, the CPU seconds of all its processes, and the load average when it started.
Configurations are interleaved round by round, so load that drifts hits them alike.

The two-worker runs put both workers on 127.0.0.1 (free ports chosen here) with their own
TF_CONFIG, exactly as docs/distributed.md shows for two hosts. A script, not a test: nothing
asserts a time. XLA (jit_compile) is never enabled.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ARCHIVE = ROOT.parent / "shared" / "data" / "cifar10-jpg.tar.gz"

# name: (workers, --batch-size per replica, extra flags, what it shows)
CONFIGS = {
    "1w": (1, 128, [], "1 worker, batch 128 (the default)"),
    "2w-global128": (2, 64, [], "2 workers x batch 64 = global batch 128 (same steps as 1w)"),
    "2w-global256": (2, 128, [], "2 workers x batch 128 = global batch 256 (half the steps)"),
    "1w-bf16": (1, 128, ["--precision", "mixed_bf16"], "1 worker, mixed bfloat16"),
    "1w-fp16": (1, 128, ["--precision", "mixed_fp16"], "1 worker, mixed float16 (loss scaling)"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"comma-separated: {', '.join(CONFIGS)}")
    p.add_argument("--spec", default="specs/best.arch")
    p.add_argument("--data", default=str(DEFAULT_ARCHIVE))
    p.add_argument("--data-dir", help="dataset cache (default: $ARCHDSL_DATA or ~/.cache/archdsl)")
    p.add_argument("--limit", type=int, default=2048)
    p.add_argument("--test-limit", type=int, default=500)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2, help="rounds; each runs every configuration once")
    p.add_argument("--timeout", type=float, default=1800, help="seconds before a run is killed")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in names if c not in CONFIGS]
    if unknown:
        p.error(f"unknown configuration {unknown[0]!r}; choose from {', '.join(CONFIGS)}")

    print(f"{os.cpu_count()} cores; {args.spec}, {args.limit} train / {args.test_limit} test images, "
          f"{args.epochs} epochs; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", flush=True)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="archdsl-bench-dist-") as scratch:
        for round_ in range(args.repeats):
            order = names if round_ % 2 == 0 else names[::-1]
            for name in order:
                r = run_config(name, args, Path(scratch) / f"{name}-{round_}")
                r["round"] = round_
                runs.append(r)
                print(f"  round {round_} {name:<13} {r['images_per_second']:7.1f} img/s   wall {r['wall']:6.1f} s"
                      f"   CPU {r['cpu']:6.1f} s   val acc {r['val_accuracy']:.3f}   [load {r['load']}]",
                      flush=True)
    summary = {}
    base = statistics.median(r["images_per_second"] for r in runs if r["config"] == names[0])
    print(f"\n| configuration | images/s (median) | vs {names[0]} | wall s | CPU s | runs |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in names:
        mine = [r for r in runs if r["config"] == name]
        speed = statistics.median(r["images_per_second"] for r in mine)
        summary[name] = {"images_per_second": speed, "vs_first": speed / base,
                         "wall": statistics.median(r["wall"] for r in mine),
                         "cpu": statistics.median(r["cpu"] for r in mine), "what": CONFIGS[name][3]}
        s = summary[name]
        print(f"| {CONFIGS[name][3]} | {speed:.1f} | {s['vs_first']:.2f} | {s['wall']:.0f} | {s['cpu']:.0f} | "
              f"{len(mine)} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "summary": summary}, indent=1))
    return 0


def run_config(name: str, args, out: Path) -> dict:
    workers, batch, extra, _ = CONFIGS[name]
    command = [sys.executable, "-m", "archdsl", "train", args.spec, "--data", args.data, "--limit", str(args.limit),
               "--test-limit", str(args.test_limit), "--epochs", str(args.epochs), "--batch-size", str(batch),
               "--out", str(out), "--verbose", "0", *extra]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    envs = [dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")]
    if workers > 1:
        ports = free_ports(workers)
        cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
        envs = [dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2",
                     TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}))
                for i in range(workers)]
        command += ["--strategy", "multiworker"]
    load = round(os.getloadavg()[0], 2)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True) for env in envs]
    try:
        outputs = [proc.communicate(timeout=args.timeout)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    for proc, output in zip(procs, outputs):
        if proc.returncode != 0:
            raise SystemExit(f"{name}: archdsl train exited {proc.returncode}:\n{output[-3000:]}")
    metrics = json.loads(next(out.glob("*/*/metrics.json")).read_text())
    shutil.rmtree(out, ignore_errors=True)
    return {"config": name, "workers": workers, "batch_per_replica": batch, "load": load, "wall": wall,
            "cpu": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "images_per_second": metrics["images_per_second_after_epoch_1"] or metrics["images_per_second"],
            "val_accuracy": metrics["final_val_accuracy"], "distribution": metrics.get("distribution")}


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


if __name__ == "__main__":
    sys.exit(main())
