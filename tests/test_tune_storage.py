"""The tuner's study storage (archdsl/training/tune_storage.py) against real databases: a SQLite file and a
throwaway PostgreSQL server (tests/postgres_cluster.py), with real Optuna and real worker processes.

Workers are `python -c` processes on this machine, as workers on several hosts would be: each opens the
storage itself. Every wait is bounded; a worker still running when a test ends is killed.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from postgres_cluster import postgres_url  # noqa: F401 - a fixture

from archdsl.errors import ArchError
from archdsl.training.tune_storage import describe_storage, masked_url, open_storage, storage_url

optuna = pytest.importorskip("optuna")   # the `tune` extra
RetryHeartbeatStaleTrialCallback = optuna.storages.RetryHeartbeatStaleTrialCallback
TrialState = optuna.trial.TrialState

TRIALS = 12
WAIT = 60            # s for a worker process, start-up (Optuna's import) included
HEARTBEAT = {"heartbeat_interval": 1, "grace_period": 2}   # small, so a dead worker's trial is stale in 2 s

# argv: url ("-": the default SQLite file), folder, study, index, mode ("share" or "hang"), trials
WORKER = """
import sys, time
from pathlib import Path
import optuna
from optuna.study import MaxTrialsCallback
from optuna.trial import TrialState
from archdsl.training.tune_storage import open_storage

url, folder, study_name, index, mode, trials = sys.argv[1:]
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = open_storage(None if url == "-" else url, Path(folder), timeout=10, heartbeat_interval=1, grace_period=2)
study = optuna.create_study(study_name=study_name, storage=storage, load_if_exists=True)
log = Path(folder, f"worker-{index}.txt")

def objective(trial):
    width = trial.suggest_int("width", 8, 256)
    with open(log, "a") as f:                       # this worker's own record, kept apart from the study
        f.write(f"{trial.number} {width}\\n")
    time.sleep(60 if mode == "hang" else 0.1)
    return width

if mode == "share":   # start together, so that both take trials
    Path(folder, f"ready-{index}").touch()
    deadline = time.monotonic() + 30
    while len(list(Path(folder).glob("ready-*"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
study.optimize(objective, n_trials=None if mode == "share" else 1,
               callbacks=[MaxTrialsCallback(int(trials), states=(TrialState.COMPLETE, TrialState.RUNNING))])
"""


def start_worker(url: str | None, folder: Path, study: str, index: int, mode: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, url or "-", str(folder), study, str(index), mode,
                             str(TRIALS)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(workers: list[subprocess.Popen]) -> list[str]:
    """Each worker's output, once all have exited (each must, within WAIT s: else killed and failed)."""
    outputs = []
    try:
        for worker in workers:
            out, _ = worker.communicate(timeout=WAIT)
            assert worker.returncode == 0, out
            outputs.append(out)
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait(timeout=10)
    return outputs


def record(folder: Path, index: int) -> dict[int, int]:
    """trial number -> width, as worker `index` wrote them down."""
    path = folder / f"worker-{index}.txt"
    if not path.exists():
        return {}
    return {int(n): int(w) for n, w in (line.split() for line in path.read_text().splitlines())}


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path) -> tuple[str | None, Path]:
    """(URL, tune folder): None for the embedded default, a SQLite file in the folder; or the server's URL."""
    return (None if request.param == "sqlite" else request.getfixturevalue("postgres_url")), tmp_path


def test_two_workers_share_one_study(storage):
    url, folder = storage
    study = f"share-{folder.name}"
    started = time.monotonic()
    finish([start_worker(url, folder, study, i, "share") for i in (0, 1)])

    trials = optuna.load_study(study_name=study, storage=open_storage(url, folder, **HEARTBEAT)).trials
    numbers = [t.number for t in trials]
    # MaxTrialsCallback stops a worker once TRIALS are complete or running; a second worker may have started
    # its trial in the moment between that count and the stop, so at most one more
    assert TRIALS <= len(trials) <= TRIALS + 1
    assert sorted(numbers) == list(range(len(trials)))
    assert all(t.state == TrialState.COMPLETE for t in trials)
    # the workers' own records: each trial ran in exactly one worker, with the width the study holds
    first, second = record(folder, 0), record(folder, 1)
    assert first and second, "both workers ran trials"
    assert not first.keys() & second.keys()
    assert {**first, **second} == {t.number: t.params["width"] for t in trials}
    assert time.monotonic() - started < WAIT


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # retried_trial_number
def test_killed_worker_trial_is_failed_and_retried(storage):
    url, folder = storage
    study = f"kill-{folder.name}"
    worker = start_worker(url, folder, study, 0, "hang")
    try:
        deadline = time.monotonic() + WAIT
        while not record(folder, 0) and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert record(folder, 0), f"the worker started no trial: {worker.communicate(timeout=10)[0]}"
        worker.send_signal(signal.SIGKILL)   # mid-trial: no chance to tell the study anything
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait(timeout=10)
    [(number, width)] = record(folder, 0).items()
    time.sleep(HEARTBEAT["grace_period"] + 1)      # its last heartbeat is now older than the grace period

    # a later worker (here, this process) fails the stale trial and runs its retry first
    seen = []
    resumed = optuna.load_study(study_name=study, storage=open_storage(url, folder, **HEARTBEAT))
    resumed.optimize(lambda trial: seen.append(trial.suggest_int("width", 8, 256)) or 0.0, n_trials=1)

    dead, retry = resumed.trials
    assert (dead.number, dead.state) == (number, TrialState.FAIL)
    assert retry.state == TrialState.COMPLETE
    assert RetryHeartbeatStaleTrialCallback.retried_trial_number(retry) == number
    assert seen == [width] and retry.params == {"width": width}


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def failure(url: str, folder: Path, timeout: float = 10.0) -> tuple[ArchError, float]:
    started = time.monotonic()
    with pytest.raises(ArchError) as caught:
        open_storage(url, folder, timeout=timeout)
    return caught.value, time.monotonic() - started


def test_unreachable_server_fails_fast_without_the_password(tmp_path):
    port = closed_port()
    error, took = failure(f"postgresql://u:secret@127.0.0.1:{port}/x", tmp_path)
    assert error.code == "E682" and took < 5
    assert f"postgresql://u:***@127.0.0.1:{port}/x" in error.message and "refused" in error.message
    assert "secret" not in error.render() and "leave out --storage" in error.hint


def test_silent_server_fails_within_the_timeout(tmp_path):
    # a port that accepts connections but never answers (a hung server, a wrong service): the driver's wait is bounded
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(4)
        error, took = failure(f"postgresql://u:secret@127.0.0.1:{silent.getsockname()[1]}/x", tmp_path, timeout=2)
    assert error.code == "E682" and "timeout" in error.message and took < 10
    assert "secret" not in error.render()


def test_wrong_password_and_missing_database(postgres_url, tmp_path):  # noqa: F811 - the fixture
    import psycopg2
    with psycopg2.connect(postgres_url.replace("+psycopg2", ""), connect_timeout=10) as admin:
        admin.autocommit = True
        admin.cursor().execute("CREATE ROLE tuner LOGIN PASSWORD 'right-one'")
    error, _ = failure(postgres_url.replace("postgres@", "tuner:wrong-one@"), tmp_path)
    assert error.code == "E683" and 'password authentication failed for user "tuner"' in error.message
    assert "wrong-one" not in error.render() and "tuner:***@" in error.message
    # the right password, but the user may not create (or, once made by another user, use) the study's tables
    error, _ = failure(postgres_url.replace("postgres@", "tuner:right-one@"), tmp_path)
    assert error.code == "E683" and "may not make or use the study's tables" in error.message
    assert "permission denied" in error.message and "OWNER" in error.hint
    error, _ = failure(postgres_url.replace("/archdsl", "/nothing"), tmp_path)
    assert error.code == "E683" and 'database "nothing" does not exist' in error.message


@pytest.mark.parametrize("url, code, said", [
    ("postgres://u:secret@127.0.0.1/x", "E680", "did you mean 'postgresql'?"),
    ("not a url", "E680", "write postgresql://USER:PASSWORD@HOST:PORT/DATABASE"),
    ("postgresql://u:secret@127.0.0.1:5432", "E680", "end the URL with /DATABASE"),
    ("postgresql+nodriver://u:secret@127.0.0.1/x", "E680", "leave the driver out"),
])
def test_bad_urls(url, code, said, tmp_path):
    error, _ = failure(url, tmp_path)
    assert error.code == code and said in error.render()
    assert "secret" not in error.render()


def test_missing_driver(tmp_path):
    pytest.importorskip("optuna")
    if __import__("importlib").util.find_spec("pymysql") is not None:
        pytest.skip("PyMySQL is installed here")
    error, _ = failure("mysql+pymysql://u:secret@127.0.0.1/x", tmp_path)
    assert error.code == "E681" and error.hint == "pip install pymysql" and "secret" not in error.render()


def test_sqlite_file_that_is_no_database(tmp_path):
    (tmp_path / "study.db").write_text("these are not the tables you are looking for\n" * 100)
    error, _ = failure(None, tmp_path)
    assert error.code == "E684" and "file is not a database" in error.message


def test_descriptions_hide_the_password(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert describe_storage(storage_url(None, Path("runs/tune/x"))) == "sqlite file runs/tune/x/study.db"
    assert storage_url(None, Path("runs")) == f"sqlite:///{tmp_path.resolve()}/runs/study.db"
    assert describe_storage("postgresql://u:pw@127.0.0.1:5433/archdsl") == "postgresql at 127.0.0.1:5433/archdsl"
    assert masked_url("postgresql://u:p@ss@h/db?password=p@ss") == "postgresql://u:***@h/db?password=***"
    assert masked_url("postgresql://u:a/b@h/db") == "postgresql://u:***@h/db"
    assert masked_url("sqlite:////tmp/study.db") == "sqlite:////tmp/study.db"
    assert os.sep == "/"   # the paths above are POSIX ones
