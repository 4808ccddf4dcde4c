"""benchmarks/bench_training.py still runs: every benchmark, tiny sizes, random images; so do
bench_distributed.py and bench_frontend.py (`archdsl rf` as a whole process: one round).

No timing is asserted (timing is never asserted in tests); only that each benchmark runs to
the end and reports a positive speed. The real numbers are in docs/performance.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "bench_training.py"
TINY = ["--data", "synthetic", "--synthetic-n", "256", "--batch", "16", "--steps", "2", "--repeats", "1",
        "--warmup", "2"]

pytestmark = pytest.mark.tf


def run_bench(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / "bench.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, str(SCRIPT), *TINY, *args, "--json", str(out)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_model_benchmark_runs(tmp_path):
    r = run_bench(tmp_path, "--bench", "model")
    assert r["machine"]["cores"] >= 1
    assert r["model"]["params"] == [76_995, 76_995]  # the compiled and the hand-written best
    assert r["model"]["ratio"] > 0 and r["model"]["target"] == 0.98
    assert r["model"]["fused_vs_keras_bn"] > 0 and r["model"]["keras_bn_vs_hand"] > 0
    assert {x["side"] for x in r["model"]["runs"]} == {"compiled", "compiled_keras_bn", "hand"}


def test_pipeline_benchmark_runs(tmp_path):
    r = run_bench(tmp_path, "--bench", "pipeline")
    sides = {"archdsl", "archdsl_autotune", "seed_arrays", "seed_arrays+flip", "pipeline_alone", "step_alone"}
    assert set(r["pipeline"]["median"]) == sides
    assert all(v > 0 for v in r["pipeline"]["median"].values())
    assert r["pipeline"]["ratio"] > 0 and r["pipeline"]["serial_estimate"] > 0


def test_settings_benchmark_runs_each_variant_in_a_fresh_process(tmp_path):
    r = run_bench(tmp_path, "--bench", "settings", "--variants", "default,channels_first")
    runs = {x["side"]: x for x in r["settings"]["runs"]}
    assert runs["default"]["rate"] > 0 and runs["channels_first"]["rate"] > 0
    assert r["settings"]["vs_default"]["default"] == 1.0


def test_epoch_benchmark_trains_through_archdsl_train(tmp_path):
    r = run_bench(tmp_path, "--bench", "epoch", "--epoch-specs", "specs/best.arch", "--epoch-limit", "128")
    epoch = r["epoch"]["specs/best.arch"]
    assert epoch["images"] == 128 and epoch["extrapolated"] is True
    row = epoch["history"][0]
    assert row["train_seconds"] > 0 and row["full_epoch_train_seconds"] > row["train_seconds"]


def test_distributed_benchmark_runs_one_and_two_workers(tmp_path, cifar_archive, data_cache):
    out = tmp_path / "dist.json"
    script = ROOT / "benchmarks" / "bench_distributed.py"
    proc = subprocess.run([sys.executable, str(script), "--configs", "1w,2w-global128", "--limit", "128",
                           "--test-limit", "64", "--epochs", "2", "--repeats", "1", "--data", str(cifar_archive),
                           "--data-dir", str(data_cache), "--json", str(out)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    two = next(run for run in r["runs"] if run["config"] == "2w-global128")
    assert two["distribution"]["workers"] == 2 and two["distribution"]["global_batch"] == 128
    assert all(run["images_per_second"] > 0 and run["cpu"] > 0 for run in r["runs"])
    assert r["summary"]["1w"]["vs_first"] == 1.0


def test_frontend_benchmark_runs(tmp_path):
    """benchmarks/bench_frontend.py (`archdsl rf` as a whole process, and its split): one round."""
    out = tmp_path / "frontend.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_frontend.py"), "--runs", "1",
                           "--warmup", "0", "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert {"python", "module", "module_cold"} <= set(r["times"])
    assert all(t["median_ms"] > 0 and len(t["runs_ms"]) == 1 for t in r["times"].values())
    split = r["split"]["this"]
    assert {"import_ir", "import_lark", "import_rest", "grammar", "parse", "resolve", "analyse", "render"} < set(split)
    assert split["in_process_total"] > 0 and r["machine"]["cores"] >= 1


def test_space_benchmark_runs(tmp_path):
    out = tmp_path / "space.json"
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_space.py"), "--rounds", "1", "--small",
                           "--json", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["combinations"] == 2 * 2 * 2 * 2 * 5 and 0 < r["feasible"] <= r["combinations"]
    assert r["explore_s"] > 0 and r["process_s"] > 0
