"""A throwaway PostgreSQL server for tests: a cluster made in a temporary folder, on loopback, stopped at the end.

    with throwaway_postgres() as url:   # postgresql+psycopg2://postgres@127.0.0.1:PORT/archdsl
        ...

or the `postgres_url` fixture (one server for a test module). The server listens only on 127.0.0.1, on a
free port, with its unix socket in the folder; `postgres` logs in from loopback without a password (trust),
every other role with its password (scram), so a test can try a wrong one. Every wait is bounded; the server
is stopped and the folder removed also when a test fails.

The binaries: `initdb` on PATH, else Debian's /usr/lib/postgresql/<version>/bin (the `postgresql` package
does not put them on PATH). Without them the tests skip, unless ARCHDSL_REQUIRE_POSTGRES=1 (.ci/run sets
it: CI installs the server, so a skip there would hide a broken install). As root, initdb refuses to run:
the cluster then belongs to the `postgres` system user (which the Debian package creates).
"""
from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

DATABASE = "archdsl"
START_TIMEOUT = 30   # s for pg_ctl start/stop (-t) and for each command
SUPERUSER = "postgres"


def server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: PATH's (a symlink is followed to its folder), else Debian's newest."""
    found = shutil.which("initdb")
    if found:
        folder = Path(found).resolve().parent
        if (folder / "pg_ctl").exists():
            return folder
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: [int(n) for n in re.findall(r"\d+", p.parent.parent.name)])
    return versions[-1].parent if versions else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def throwaway_postgres() -> Iterator[str]:
    """A running server with an empty database `archdsl`; yields its URL. Raises RuntimeError (with the
    server's log) if it does not start, FileNotFoundError if the binaries are not installed."""
    binaries = server_binaries()
    if binaries is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb) on PATH or in /usr/lib/postgresql/*/bin")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="archdsl-pg-"))  # not pytest's tmp_path: the postgres user must enter
    try:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SUPERUSER)   # KeyError: the server package was not installed as Debian's is
            os.chown(folder, account.pw_uid, account.pw_gid)
            as_user = ["runuser", "-u", SUPERUSER, "--"]
        data, port = folder / "data", _free_port()

        def run(*command: str) -> None:
            done = subprocess.run([*as_user, *command], cwd=folder, capture_output=True, text=True,
                                  timeout=START_TIMEOUT + 10, check=False)
            if done.returncode != 0:
                log = (folder / "server.log").read_text(errors="replace")[-2000:] if (folder / "server.log").exists() \
                    else ""
                raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}): {done.stdout}{done.stderr}\n{log}")

        run(str(binaries / "initdb"), "-D", str(data), "-U", SUPERUSER, "--no-sync", "-E", "UTF8", "--locale=C",
            "--auth-local=trust", "--auth-host=scram-sha-256")
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            # loopback only, our own socket folder; durability is not wanted from a throwaway cluster
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{folder}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        hba = data / "pg_hba.conf"
        hba.write_text(f"local all all trust\nhost all {SUPERUSER} 127.0.0.1/32 trust\n"
                       "host all all 127.0.0.1/32 scram-sha-256\n", encoding="utf-8")
        run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t",
            str(START_TIMEOUT), "start")
        try:
            run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", SUPERUSER, DATABASE)
            yield f"postgresql+psycopg2://{SUPERUSER}@127.0.0.1:{port}/{DATABASE}"
        finally:
            # fast: disconnect the clients (a killed test worker's may linger) and stop
            stop = subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t",
                                   str(START_TIMEOUT), "stop"], cwd=folder, capture_output=True, timeout=START_TIMEOUT + 10,
                                  check=False)
            if stop.returncode != 0:
                subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                               cwd=folder, capture_output=True, timeout=START_TIMEOUT + 10, check=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """The URL of a throwaway server for the test module; skips without the binaries (fails under CI's
    ARCHDSL_REQUIRE_POSTGRES=1)."""
    if server_binaries() is None:
        reason = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed (apt-get install postgresql)"
        if os.environ.get("ARCHDSL_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"ARCHDSL_REQUIRE_POSTGRES=1: {reason}")
        pytest.skip(reason)
    with throwaway_postgres() as url:
        yield url
