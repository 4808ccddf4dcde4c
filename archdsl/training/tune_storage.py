"""Where `archdsl tune` keeps its study: Optuna's RDBStorage over a SQLite file or a database server.

    storage = open_storage(None, Path("runs/tune/x"))       # the embedded default: runs/tune/x/study.db
    storage = open_storage("postgresql://tuner:PW@db:5432/archdsl", folder)   # shared by several hosts
    describe_storage(storage_url(url, folder))               # "postgresql at db:5432/archdsl", for logs

Every worker that opens the same URL and loads the same study name shares one study: Optuna hands each
trial to one worker. Optuna's heartbeat covers a worker that dies mid-trial: a running worker records a
beat every `heartbeat_interval` s; a trial without one for `grace_period` s is marked failed by the next
worker that starts a trial, and RetryHeartbeatStaleTrialCallback queues a copy of it (same choices), which
the next free worker (or a resumed one) runs. A SQLite file is for one machine: its locks are file locks,
which network file systems do not keep reliably; several hosts share a server (docs/tuning.md).

Errors (E680-E684) name the URL with its password masked and come within about `timeout` seconds: the
server's port is tried first, then the driver connects with the same bound.
"""
from __future__ import annotations

import math
import re
import socket
import time
import warnings
from pathlib import Path

from ..errors import RunError, UsageError, did_you_mean

HEARTBEAT_INTERVAL = 30   # s between a running trial's beats
GRACE_PERIOD = 120        # s without a beat before a trial counts as dead: 4 beats, so a busy host is not taken for one
MAX_RETRY = 2             # a trial whose worker dies is run again at most this often (a trial that kills its worker
                          # every time, e.g. by running out of memory, must not take the whole study down)
# Two workers on one SQLite file take turns at its write lock; sqlite3 gives up after 5 s by default, too short
# when the other worker's commit waits on a slow disk. Optuna's transactions are short: a minute is never reached
# unless something is wrong.
SQLITE_LOCK_WAIT = 60
SERVERS = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}   # default ports
# a postgresql:// URL names no driver: SQLAlchemy 2.1 would take psycopg (3); the `tune` extra brings psycopg2
DEFAULT_DRIVERS = {"postgresql": "psycopg2"}
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "'psycopg[binary]'", "pymysql": "pymysql",
                   "mysqldb": "mysqlclient"}
BACKENDS = (*SERVERS, "sqlite")
CREATE_TRIES = 3          # workers starting together on an empty database race to create its tables
ONE_MACHINE = "for one machine leave out --storage (a SQLite file in the tune folder)"
_PASSWORD_IN_URL = re.compile(r"^([\w+.-]+://[^:@/]*:)[^/?#]*@")
_PASSWORD_ANYHOW = re.compile(r"^([\w+.-]+://[^:@/]*:).*@")   # a raw / in the password: hide all up to the last @
_PASSWORD_IN_QUERY = re.compile(r"(password=)[^&]*", re.IGNORECASE)


def storage_url(url: str | None, folder: Path) -> str:
    """The URL the study is kept at: `url`, or the embedded default, `folder/study.db` (an absolute path)."""
    return url if url is not None else "sqlite:///" + str((Path(folder) / "study.db").resolve())


def masked_url(url: str) -> str:
    """`url` with its password (in the user part or a `password=` parameter) as ***: safe to print and log."""
    masked, found = _PASSWORD_IN_URL.subn(r"\1***@", url)
    return _PASSWORD_IN_QUERY.sub(r"\1***", masked if found else _PASSWORD_ANYHOW.sub(r"\1***@", url))


def describe_storage(url: str) -> str:
    """A short description for logs: "sqlite file runs/tune/x/study.db", "postgresql at 127.0.0.1:5433/archdsl"."""
    try:
        from sqlalchemy.engine import make_url
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - any URL SQLAlchemy cannot read (or no SQLAlchemy): shown masked, as given
        return masked_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        path = Path(parsed.database or ":memory:")
        if path.is_absolute() and path.is_relative_to(Path.cwd()):
            path = path.relative_to(Path.cwd())
        return f"sqlite file {path}"
    port = f":{parsed.port}" if parsed.port else ""
    return f"{backend} at {parsed.host or 'the local socket'}{port}/{parsed.database or ''}"


def open_storage(url: str | None, folder: Path, *, timeout: float = 10.0,
                 heartbeat_interval: int = HEARTBEAT_INTERVAL, grace_period: int = GRACE_PERIOD,
                 max_retry: int = MAX_RETRY):
    """Optuna's RDBStorage at `url` (None: the SQLite file `folder/study.db`, the folder made if missing), with
    the heartbeat and the retry of dead workers' trials; its tables are made if the database has none.
    A server that does not answer fails within about `timeout` s. Raises E680-E684."""
    try:
        import optuna
        import sqlalchemy
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    except ImportError as e:
        raise UsageError(f"archdsl tune needs Optuna and SQLAlchemy: {e}", hint="pip install 'archdsl[tune]'",
                         code="E681") from None
    shown = masked_url(storage_url(url, folder))
    parsed, backend = _parse(storage_url(url, folder), shown, sqlalchemy)
    if url is None:
        try:
            Path(folder).mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunError(f"cannot make the tune folder {folder}: {e.strerror}", code="E684",
                           hint="give a writable tune folder (or a --storage server)") from None
    driver = _import_driver(parsed, backend, shown)
    if backend in SERVERS and parsed.host:
        _reach(parsed.host, parsed.port or SERVERS[backend], backend, shown, timeout)
    engine_kwargs = _engine_kwargs(backend, driver, timeout)
    for attempt in range(1, CREATE_TRIES + 1):
        try:
            with warnings.catch_warnings():
                # the heartbeat is "experimental" in Optuna's words; the warning would greet every tune
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(parsed.render_as_string(hide_password=False), engine_kwargs=engine_kwargs,
                                  heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                  heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=max_retry))
        except (sqlalchemy.exc.SQLAlchemyError, optuna.exceptions.StorageInternalError, RuntimeError) as e:
            # Optuna wraps a failed commit in StorageInternalError: the database's own error is its cause
            cause = e.__cause__ if isinstance(e, optuna.exceptions.StorageInternalError) and e.__cause__ else e
            said = _said(cause, parsed.password or "")
            # workers starting together on an empty database race to create its tables and version row: the
            # loser's tables are there a moment later
            racing = isinstance(cause, sqlalchemy.exc.IntegrityError) or "already exists" in said
            if racing and attempt < CREATE_TRIES:
                time.sleep(0.2 * attempt)
                continue
            if isinstance(cause, RuntimeError):   # Optuna's check of the schema: tables of another Optuna version
                raise RunError(f"the study tables in {shown} are not of this Optuna ({optuna.__version__}): {said}",
                               code="E684", hint=f"optuna storage upgrade --storage '{shown}' (with the real "
                                                 "password), or give another database") from None
            raise _refused(said, backend, shown) from None
    raise AssertionError("unreachable")  # the loop returns or raises


def _parse(full: str, shown: str, sqlalchemy):
    """The parsed URL and its backend ("postgresql", ...); E680 for one the tuner cannot use."""
    try:
        parsed = sqlalchemy.engine.make_url(full)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        raise UsageError(f"--storage {shown} is not a database URL", code="E680",
                         hint="write postgresql://USER:PASSWORD@HOST:PORT/DATABASE or sqlite:///PATH; "
                              + ONE_MACHINE) from None
    backend = parsed.get_backend_name()
    if "+" not in parsed.drivername and backend in DEFAULT_DRIVERS:
        parsed = parsed.set(drivername=f"{backend}+{DEFAULT_DRIVERS[backend]}")
    if backend not in BACKENDS:
        guess = did_you_mean(backend, BACKENDS)
        raise UsageError(f"--storage {shown}: '{backend}' is not a database archdsl tune can keep a study in "
                         f"(postgresql, mysql, mariadb, sqlite)", code="E680",
                         hint=(f"{guess} " if guess else "") + "e.g. postgresql://USER:PASSWORD@HOST:PORT/DATABASE; "
                              + ONE_MACHINE)
    if not parsed.database:
        raise UsageError(f"--storage {shown} names no database", code="E680",
                         hint=("write sqlite:///PATH/study.db" if backend == "sqlite"
                               else f"end the URL with /DATABASE, e.g. {backend}://USER@HOST/archdsl"))
    return parsed, backend


def _import_driver(parsed, backend: str, shown: str) -> str:
    """The name of the URL's driver (psycopg2, pymysql, pysqlite, ...), once it imports: else E680 or E681."""
    import sqlalchemy
    try:
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        raise UsageError(f"--storage {shown}: SQLAlchemy knows no driver '{parsed.get_driver_name()}' for "
                         f"{backend}", code="E680",
                         hint=f"leave the driver out ({backend}://...) to use the default one") from None
    try:
        dialect.import_dbapi()
    except ImportError as e:
        package = DRIVER_PACKAGES.get(dialect.driver, dialect.driver)
        raise UsageError(f"--storage {shown}: the {backend} driver {dialect.driver} is not installed ({e})",
                         code="E681",
                         hint="pip install 'archdsl[tune]' (it brings psycopg2)" if dialect.driver == "psycopg2"
                         else f"pip install {package}") from None
    return dialect.driver


def _reach(host: str, port: int, backend: str, shown: str, timeout: float) -> None:
    """E682 if nothing accepts a connection at host:port within `timeout` s (the driver would say it no sooner)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        reason = "no answer" if isinstance(e, TimeoutError) else (e.strerror or str(e)).lower()
        check = f"pg_isready -h {host} -p {port}" if backend == "postgresql" else f"mysqladmin -h {host} -P {port} ping"
        raise RunError(f"the {backend} server of --storage {shown} cannot be reached: {reason} (waited up to "
                       f"{timeout:g} s)", code="E682",
                       hint=f"start the server or check host/port (`{check}`); {ONE_MACHINE}") from None


def _engine_kwargs(backend: str, driver: str, timeout: float) -> dict:
    if backend == "sqlite":
        return {"connect_args": {"timeout": SQLITE_LOCK_WAIT}}
    seconds = max(1, math.ceil(timeout))   # the drivers take whole seconds
    connect_args = {"connect_timeout": seconds} if driver in ("psycopg2", "pymysql", "mysqldb") else {}
    # pool_pre_ping: a connection that sat idle through a long trial may have been closed by the server or a
    # firewall; SQLAlchemy tests it before use and opens a new one instead of failing the trial's write
    return {"pool_pre_ping": True, "connect_args": connect_args}


def _refused(said: str, backend: str, shown: str) -> RunError:
    """What the database said when it would not hold the study (its port answered, or it is a SQLite file)."""
    if backend == "sqlite":
        return RunError(f"cannot use the SQLite file of {shown}: {said}", code="E684",
                        hint="give a writable tune folder (or another --storage)")
    if "timeout" in said.lower() or "timed out" in said.lower():
        return RunError(f"the {backend} server of --storage {shown} does not answer: {said}", code="E682",
                        hint=f"start the server or check host/port; {ONE_MACHINE}")
    if "permission denied" in said.lower():
        return RunError(f"the user of --storage {shown} may not make or use the study's tables: {said}",
                        code="E683", hint="make the user the database's owner (`CREATE DATABASE archdsl OWNER "
                                          "tuner`, docs/tuning.md)")
    allowed = "pg_hba.conf" if backend == "postgresql" else "user's allowed hosts"
    return RunError(f"the {backend} server of --storage {shown} refuses the connection: {said}", code="E683",
                    hint=f"check the URL's user, password and database (docs/tuning.md shows how to create them) "
                         f"and the server's {allowed}")


def _said(e: BaseException, password: str) -> str:
    """What the database said, on one line, without the password."""
    text = " ".join(str(getattr(e, "orig", None) or e).split())
    if password:
        text = text.replace(password, "***")
    return text[:300]
