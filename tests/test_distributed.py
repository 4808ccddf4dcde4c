"""Distributed training: TF_CONFIG, strategy choice, replica shares of the data, and two real workers.

The workers are `archdsl train` processes on 127.0.0.1, each with its own TF_CONFIG and
port, CPU only. Every wait is bounded; a worker still running when a test ends is killed
(SIGKILL: TensorFlow's coordination service ignores SIGTERM).
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from archdsl.training import distribute
from archdsl.training.cluster import parse_tf_config
from archdsl.training.distribute import Plan, choose
from archdsl.errors import UsageError
from test_train import ROOT, RUN_FILES, cli_command, cli_env, one_line_error, the_run, write_spec

SPEC = """\
model tiny
input 32x32x3
classes 10

conv 3x3 8 same bn relu
maxpool 2x2
sep 3x3 16 same drop .1 bn relu
gap
dense classes
softmax

train {
  batch 32
  epochs 1
  augment flip crop 2
}
"""
WORKER_TIMEOUT = 150  # seconds for a whole two-worker run, start-up included


# --- helpers ---------------------------------------------------------------------------------

def free_ports(n: int) -> list[int]:
    """n distinct ports nobody listens on (bound together, so they differ, then released)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def tf_config(ports: list[int], index: int, job: str = "worker") -> str:
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": job, "index": index}})


class Workers:
    """Worker processes, one log file each; kill() ends every one still running."""

    def __init__(self, folder: Path):
        self.folder, self.procs, self.logs = folder, [], []

    def start(self, args: list, config: str | None, name: str, **env) -> None:
        log = self.folder / f"{name}.log"
        env = {**cli_env(), "TF_CONFIG": config, **env}
        with open(log, "w") as f:
            self.procs.append(subprocess.Popen(
                cli_command(*args), stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT,
                env={k: v for k, v in env.items() if v is not None}, start_new_session=True))
        self.logs.append(log)

    def wait(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        try:
            return [p.wait(timeout=max(0.1, deadline - time.monotonic())) for p in self.procs]
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"the workers did not finish within {timeout} s\n{self.output()}")

    def kill(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=30)

    def output(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()}" for log in self.logs)


@pytest.fixture
def workers(tmp_path):
    w = Workers(tmp_path)
    yield w
    w.kill()


@pytest.fixture(scope="module")
def data(cifar_archive, data_cache) -> list:
    """--data/--data-dir for the workers, decoded once here (so the workers do not race to decode it)."""
    from archdsl.training.data import load_dataset

    cache = os.environ.get("ARCHDSL_DATA") or str(data_cache)  # CI keeps a decoded cache across sessions
    load_dataset(str(cifar_archive), cache, 256, 64)
    return ["--data", cifar_archive, "--data-dir", cache]


# --- TF_CONFIG (no TensorFlow) ---------------------------------------------------------------

GOOD = {"cluster": {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}, "task": {"type": "worker", "index": 1}}


@pytest.mark.parametrize("text, message", [
    (None, "TF_CONFIG is not set: the multiworker strategy needs it on every worker"),
    ("{'cluster': {}}", "TF_CONFIG is not valid JSON: Expecting property name enclosed in double quotes: "
                        "line 1 column 2 (char 1)"),
    ('["worker"]', "TF_CONFIG must be a JSON object with 'cluster' and 'task', not list"),
    ('{"task": {"type": "worker", "index": 0}}', "TF_CONFIG has no 'cluster'"),
    ('{"cluster": {"worker": ["a:1"]}}', "TF_CONFIG has no 'task'"),
    ('{"cluster": [], "task": {}}', "TF_CONFIG 'cluster' must map job names to lists of \"host:port\" addresses"),
    ('{"cluster": {"worker": "a:1"}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster 'worker' must be a non-empty list of \"host:port\" addresses"),
    ('{"cluster": {"worker": ["a:1", "b"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster worker[1] \"b\" is not a \"host:port\" address"),
    ('{"cluster": {"worker": ["a:99999"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG cluster worker[0] \"a:99999\" is not a \"host:port\" address"),
    ('{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG lists a:1 twice (worker[0] and worker[1])"),
    ('{"cluster": {"evaluator": ["a:1"]}, "task": {"type": "evaluator", "index": 0}}',
     "TF_CONFIG cluster has no 'worker' job"),
    ('{"cluster": {"worker": ["a:1"], "ps": ["b:1"]}, "task": {"type": "worker", "index": 0}}',
     "TF_CONFIG has a 'ps' job: parameter servers are not used by multiworker training"),
    ('{"cluster": {"workers": ["a:1"], "chief": ["c:1"]}, "task": {"type": "chief", "index": 0}}',
     "TF_CONFIG cluster has an unknown job 'workers'"),
    ('{"cluster": {"chief": ["a:1", "b:1"]}, "task": {"type": "chief", "index": 0}}', "TF_CONFIG cluster has 2 chiefs"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"index": 0}}', "TF_CONFIG 'task' must be an object with 'type' and 'index'"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "wroker", "index": 0}}',
     "TF_CONFIG task type \"wroker\" is not a job of the cluster"),
    ('{"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 2}}',
     "TF_CONFIG task index 2 is out of range: the cluster has 2 'worker' tasks (index 0..1)"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": -1}}',
     "TF_CONFIG task index -1 is out of range: the cluster has 1 'worker' task (index 0)"),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": "0"}}',
     "TF_CONFIG task index \"0\" is not a whole number"),
    ('{"cluster": {"worker": ["a:1"], "evaluator": ["e:1"]}, "task": {"type": "evaluator", "index": 0}}',
     "TF_CONFIG task is an evaluator, which does not train"),
])
def test_tf_config_errors_name_the_problem(text, message):
    with pytest.raises(UsageError) as caught:
        parse_tf_config(text)
    assert caught.value.message == message
    assert caught.value.code == "E621" and caught.value.hint


def test_tf_config_hints():
    with pytest.raises(UsageError) as caught:
        parse_tf_config('{"cluster": {"worker": ["a:1"]}, "task": {"type": "wroker", "index": 0}}')
    assert caught.value.hint == "did you mean 'worker'?"
    with pytest.raises(UsageError) as caught:
        parse_tf_config(None)
    assert "TF_CONFIG='{\"cluster\": {\"worker\": [\"host1:12345\", \"host2:12345\"]}" in caught.value.hint


def test_tf_config_roles():
    c = parse_tf_config(json.dumps(GOOD))
    assert (c.workers, c.worker_id, c.is_chief, c.address) == (2, 1, False, "10.0.0.2:2222")
    assert parse_tf_config(json.dumps({**GOOD, "task": {"type": "worker", "index": 0}})).is_chief
    # with a chief job, the chief is task 0 of the cluster and worker 0 is task 1 (TensorFlow's order)
    config = {"cluster": {"worker": ["w0:1", "w1:1"], "chief": ["c:1"], "evaluator": ["e:1"]},
              "task": {"type": "worker", "index": 0}}
    c = parse_tf_config(json.dumps(config))
    assert [a for _, _, a in c.tasks] == ["c:1", "w0:1", "w1:1"]
    assert (c.workers, c.worker_id, c.is_chief) == (3, 1, False)
    assert parse_tf_config(json.dumps({**config, "task": {"type": "chief", "index": 0}})).is_chief
    ipv6 = {"cluster": {"worker": ["[::1]:2222"]}, "task": {"type": "worker", "index": 0}}
    assert parse_tf_config(json.dumps(ipv6)).address == "[::1]:2222"


# --- choosing a strategy (no TensorFlow) -----------------------------------------------------

@pytest.mark.parametrize("name, gpus, config, cpu_replicas, expected", [
    ("auto", 0, None, 0, ("default", None)),
    ("auto", 1, None, 0, ("default", None)),
    ("auto", 2, None, 0, ("mirrored", None)),
    ("default", 4, None, 0, ("default", None)),
    ("mirrored", 1, None, 0, ("mirrored", None)),
    ("mirrored", 0, None, 0, ("default", "--strategy mirrored: no GPU is visible; training with the default strategy")),
    ("mirrored", 0, None, 2, ("mirrored", None)),
    ("multiworker", 0, "{}", 0, ("multiworker", None)),
    ("auto", 0, "{}", 0, ("default", "TF_CONFIG is set but the strategy is auto: training on this host only "
                                     "(use --strategy multiworker to train on the cluster)")),
])
def test_strategy_choice(name, gpus, config, cpu_replicas, expected):
    assert choose(name, gpus, config, cpu_replicas) == expected


def test_unknown_names_get_a_did_you_mean():
    with pytest.raises(UsageError) as caught:
        distribute.check_strategy("mirorred")
    assert (caught.value.message, caught.value.hint, caught.value.code) == (
        "--strategy mirorred: unknown strategy", "did you mean 'mirrored'? (one of: auto, default, mirrored, multiworker)",
        "E620")
    with pytest.raises(UsageError) as caught:
        distribute.check_strategy("horovod")
    assert caught.value.hint == "one of: auto, default, mirrored, multiworker"
    with pytest.raises(UsageError) as caught:
        distribute.check_precision("bf16")
    assert (caught.value.message, caught.value.hint) == (
        "--precision bf16: unknown precision", "did you mean 'mixed_bf16'? (one of: fp32, mixed_bf16, mixed_fp16)")


def test_plan_roles_batch_semantics_and_lr_scaling():
    from archdsl.ir import TrainConfig

    assert Plan("multiworker", environ={"TF_CONFIG": json.dumps(GOOD)}).is_chief is False
    assert Plan("default", environ={}).is_chief
    with pytest.raises(UsageError, match="TF_CONFIG is not set"):
        Plan("multiworker", environ={})
    plan = Plan("default", scale_lr=True, environ={})
    plan.kind, plan.replicas = "mirrored", 4  # as connect() sets them on a 4-GPU host
    cfg = TrainConfig(batch=32, lr=0.01, final_lr=0.001, schedule="cosine")
    assert plan.scaled(cfg).lr == pytest.approx(0.04) and plan.scaled(cfg).final_lr == pytest.approx(0.004)
    assert plan.summary(cfg) == ("strategy mirrored: 4 replicas; batch 32 per replica, global batch 128; "
                                 "lr 0.01 x 4 replicas = 0.04 (--scale-lr); precision fp32")
    assert plan.describe(cfg)["global_batch"] == 128
    assert "global batch 128 x 2 passes an epoch; lr" in plan.summary(cfg.model_copy(update={"passes": 2}))
    assert Plan("default", environ={}).scaled(cfg) is cfg


# --- the command line: bad input, unreachable peers (no TensorFlow is started) ----------------

def run_cli_env(*args, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout,
                          env={**cli_env(), **env}, cwd=ROOT, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("config, message", [
    ("{not json", "error[E621]: TF_CONFIG is not valid JSON: Expecting property name enclosed in double quotes"),
    ('{"task": {"type": "worker", "index": 0}}', "error[E621]: TF_CONFIG has no 'cluster'"),
    ('{"cluster": {"worker": ["127.0.0.1:1"]}, "task": {"type": "worker", "index": 3}}',
     "error[E621]: TF_CONFIG task index 3 is out of range: the cluster has 1 'worker' task (index 0)"),
])
def test_cli_malformed_tf_config_is_one_line(tmp_path, config, message):
    spec = write_spec(tmp_path, SPEC)
    proc = run_cli_env("train", spec, "--strategy", "multiworker", "--out", tmp_path / "out", env={"TF_CONFIG": config})
    assert proc.returncode == 2
    assert one_line_error(proc).startswith(message)
    assert not (tmp_path / "out").exists()


def test_cli_unknown_strategy_and_precision(tmp_path):
    spec = write_spec(tmp_path, SPEC)
    proc = run_cli_env("train", spec, "--strategy", "mirorred", env={})
    assert proc.returncode == 2
    assert one_line_error(proc) == "error[E620]: --strategy mirorred: unknown strategy"
    assert "hint: did you mean 'mirrored'?" in proc.stderr
    proc = run_cli_env("train", spec, "--precision", "fp8", env={})
    assert one_line_error(proc) == "error[E620]: --precision fp8: unknown precision"


@pytest.mark.parametrize("index", [0, 1])
def test_unreachable_peer_is_a_clear_error_within_the_timeout(tmp_path, index):
    """A TF_CONFIG naming a port nobody listens on: an error after --peer-timeout, not a hang."""
    spec = write_spec(tmp_path, SPEC)
    ports = free_ports(2)
    start = time.monotonic()
    proc = run_cli_env("train", spec, "--strategy", "multiworker", "--peer-timeout", "3", "--out", tmp_path / "out",
                       env={"TF_CONFIG": tf_config(ports, index)}, timeout=60)
    elapsed = time.monotonic() - start
    other = 1 - index
    assert proc.returncode == 1
    assert one_line_error(proc) == (f"error[E550]: worker {index} (127.0.0.1:{ports[index]}) could not reach "
                                    f"worker {other} (127.0.0.1:{ports[other]}) within 3 s")
    assert "--peer-timeout" in proc.stderr
    assert 3 <= elapsed < 30, elapsed
    assert not (tmp_path / "out").exists()


def test_workers_with_different_clusters_refuse_to_start(tmp_path, workers):
    spec = write_spec(tmp_path, SPEC)
    ports = free_ports(3)
    configs = [tf_config(ports[:2], 0), tf_config([ports[0], ports[1], ports[2]], 1)]
    for i, config in enumerate(configs):
        workers.start(["train", spec, "--strategy", "multiworker", "--peer-timeout", "20", "--out", tmp_path / "out"],
                      config, f"worker{i}")
    codes = workers.wait(60)
    assert codes == [1, 1], workers.output()
    for log in workers.logs:
        assert "have different TF_CONFIG clusters" in log.read_text()


# --- pieces that need TensorFlow, in this process --------------------------------------------

@pytest.mark.tf
@pytest.mark.parametrize("flip_mode", ["random", "alternate"])
@pytest.mark.parametrize("replicas, batch", [(2, 16), (3, 15), (4, 16)])
def test_replica_shares_are_the_whole_batch(replicas, batch, flip_mode):
    """The replicas' shares of a global batch are its images, augmented as in the one-replica pipeline."""
    from archdsl.ir import Augment
    from archdsl.training.pipeline import make_eval_dataset, make_train_dataset, steps_per_epoch

    n = 50
    rng = np.random.default_rng(0)
    x, y = rng.integers(1, 256, (n, 12, 10, 3), dtype=np.uint8), rng.integers(0, 4, n)
    augment = Augment(flip=True, flip_mode=flip_mode, crop=2, cutout=3)
    options = dict(batch=batch, num_classes=4, augment=augment, seed=7, epoch=1, epochs=2)
    whole = [(a.numpy(), b.numpy()) for a, b in make_train_dataset(x, y, **options)]
    shares = [(a.numpy(), b.numpy()) for a, b in make_train_dataset(x, y, **options, replicas=replicas)]
    steps = steps_per_epoch(n, batch, replicas)
    assert steps == (n // batch if 0 < n % batch < replicas else -(-n // batch))
    per_epoch = -(-n // batch)
    whole = [whole[e * per_epoch + k] for e in range(2) for k in range(steps)]  # a too-small last batch is left out
    assert len(shares) == len(whole) * replicas
    for step, (images, labels) in enumerate(whole):
        parts = shares[step * replicas:(step + 1) * replicas]
        for r, (part_images, part_labels) in enumerate(parts):
            assert len(part_images) > 0
            np.testing.assert_array_equal(part_images, images[r::replicas])
            np.testing.assert_array_equal(part_labels, labels[r::replicas])
    # a worker's pipeline holds its own replicas' shares only
    mine = [a.numpy() for a, _ in make_train_dataset(x, y, **options, replicas=replicas, replica_ids=[1])]
    np.testing.assert_array_equal(np.concatenate(mine), np.concatenate([s[0] for s in shares[1::replicas]]))
    # evaluation keeps every image, once
    evaluated = [b.numpy() for _, b in make_eval_dataset(x, y, batch=batch, num_classes=4, replicas=replicas)]
    assert sum(len(b) for b in evaluated) == n


@pytest.mark.tf
def test_mixed_precision_keeps_a_float32_softmax():
    import archdsl
    import keras
    from archdsl.keras_backend.compile import compile as compile_keras

    model = archdsl.loads(SPEC)
    for precision, compute in (("mixed_bf16", "bfloat16"), ("mixed_fp16", "float16")):
        with distribute.dtype_policy(precision):
            kmodel = compile_keras(model)
            distribute.float32_head(kmodel)
        assert keras.config.dtype_policy().name == "float32"  # restored
        assert kmodel.layers[-2].compute_dtype == compute and kmodel.layers[-1].compute_dtype == "float32"
        out = kmodel(np.zeros((2, 32, 32, 3), np.float32))
        assert keras.backend.standardize_dtype(out.dtype) == "float32"
        np.testing.assert_allclose(np.asarray(out).sum(axis=1), 1, rtol=1e-6)


@pytest.mark.tf
def test_mirrored_without_gpu_falls_back_with_a_warning(capsys):
    plan = Plan("mirrored", environ={})
    assert plan.connect() is None
    assert (plan.kind, plan.replicas) == ("default", 1)
    assert capsys.readouterr().err == "warning: --strategy mirrored: no GPU is visible; training with the default strategy\n"


# --- two workers on this machine -------------------------------------------------------------

@pytest.mark.tf
def test_two_workers_train_one_epoch(tmp_path, data, workers):
    """Two CPU workers: both finish; the chief's run is complete; the other left nothing; equal weights,
    and the same as two replicas of one host (MirroredStrategy over two logical CPUs) reach."""
    spec = write_spec(tmp_path, SPEC)
    out = tmp_path / "out"
    ports = free_ports(2)
    common = ["train", spec, *data, "--limit", 256, "--test-limit", 64, "--verbose", 2]
    for i in range(2):
        (tmp_path / f"tmp{i}").mkdir()
        workers.start([*common, "--out", out, "--strategy", "multiworker", "--peer-timeout", 60,
                       "--final-weights", tmp_path / f"w{i}.npz"], tf_config(ports, i), f"worker{i}",
                      TMPDIR=str(tmp_path / f"tmp{i}"))
    workers.start([*common, "--out", tmp_path / "mirrored", "--strategy", "mirrored",
                   "--final-weights", tmp_path / "mirrored.npz"], None, "mirrored", ARCHDSL_CPU_REPLICAS="2")
    assert workers.wait(WORKER_TIMEOUT) == [0, 0, 0], workers.output()
    chief, other, _ = (log.read_text() for log in workers.logs)
    batch_line = "strategy multiworker: 2 workers x 1 replica; batch 32 per replica, global batch 64; lr 0.01"
    assert batch_line in chief and batch_line in other
    assert "worker 1 of 2 done: epoch 1/1" in other and "run directory: " in chief

    run = the_run(out)  # the only run: the other worker created nothing under --out
    assert sorted(p.name for p in out.rglob("*") if run not in (p, *p.parents)) == ["tiny"]
    for name in RUN_FILES:
        assert (run / name).is_file(), name
    assert [line.split(",")[0] for line in (run / "history.csv").read_text().splitlines()] == ["epoch", "1"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["complete"] and metrics["epochs_done"] == 1
    assert {k: metrics["distribution"][k] for k in ("strategy", "workers", "replicas", "global_batch")} == {
        "strategy": "multiworker", "workers": 2, "replicas": 2, "global_batch": 64}
    for i in range(2):  # the scratch run directories are gone
        assert not [p.name for p in (tmp_path / f"tmp{i}").iterdir() if p.name.startswith(distribute.SCRATCH_PREFIX)]

    w0, w1 = np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")
    assert w0.files == w1.files and any("moving_mean" in k for k in w0.files) and any("adam" in k for k in w0.files)
    different = [k for k in w0.files if not np.array_equal(w0[k], w1[k])]
    assert not different, different
    mirrored = np.load(tmp_path / "mirrored.npz")  # the same shares, the same all-reduced gradients
    assert mirrored.files == w0.files
    for k in w0.files:
        np.testing.assert_allclose(mirrored[k], w0[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert not all(np.array_equal(w0[k], np.zeros_like(w0[k])) for k in w0.files)


@pytest.mark.slow
@pytest.mark.tf
def test_a_killed_worker_resumes(tmp_path, data, workers):
    """Kill worker 1 in epoch 2: worker 0 stops with E551; both restarted with --resume finish the run,
    whose history equals an uninterrupted two-worker run's (pytest -m slow; about 3 minutes)."""
    spec = write_spec(tmp_path, SPEC)
    common = [*data, "--limit", 2048, "--test-limit", 128, "--epochs", 3, "--verbose", 2, "--strategy", "multiworker"]

    def two(name: str, args: list) -> Workers:
        group = Workers(tmp_path)
        ports = free_ports(2)
        for i in range(2):
            group.start(args, tf_config(ports, i), f"{name}{i}")
        workers.procs += group.procs  # the fixture kills whatever is left
        return group

    reference = two("reference", ["train", spec, *common, "--out", tmp_path / "reference"])
    assert reference.wait(300) == [0, 0], reference.output()
    killed = two("killed", ["train", spec, *common, "--out", tmp_path / "killed"])
    deadline = time.monotonic() + 300
    while "Epoch 2/3" not in killed.logs[1].read_text():
        assert time.monotonic() < deadline and killed.procs[1].poll() is None, killed.output()
        time.sleep(0.5)
    time.sleep(1)
    os.killpg(killed.procs[1].pid, signal.SIGKILL)
    assert killed.wait(120)[0] == 1, killed.output()
    assert "error[E551]: worker 0 lost the cluster during training" in killed.logs[0].read_text()
    run = the_run(tmp_path / "killed")
    assert json.loads((run / "checkpoint/state.json").read_text())["epoch"] == 1
    resumed = two("resumed", ["train", "--resume", run, "--strategy", "multiworker", "--verbose", 2])
    assert resumed.wait(300) == [0, 0], resumed.output()

    def rows(folder):
        return [line.split(",")[:-1] for line in (folder / "history.csv").read_text().splitlines()]

    assert rows(run) == rows(the_run(tmp_path / "reference"))
