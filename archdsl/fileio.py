"""Writing files so that nothing a user has is lost.

Every write goes to a temporary file in the target's folder and is moved into place
with `os.replace`, so a kill mid-write leaves the previous file intact. Outputs that
already exist are refused unless the caller allows replacing them.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from .errors import RunError, UsageError


def check_target(path: str | os.PathLike, overwrite: bool) -> Path:
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{target} is a directory", hint="give a file name", code="E602")
    if target.exists() and not overwrite:
        raise UsageError(f"{target} already exists; archdsl does not overwrite it",
                         hint="choose another name, or remove the file first", code="E603")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.exists():
        raise UsageError(f"folder {parent} does not exist", hint=f"create it: mkdir -p {parent}", code="E604")
    if not os.access(parent, os.W_OK):
        raise UsageError(f"folder {parent} is not writable", hint="choose another output path", code="E605")
    return target


def umask() -> int:
    """The process' umask (reading it means setting it; it is set back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _new_file_mode(fd_or_path) -> None:
    """mkstemp makes files 0600; give them the mode a plain open() would (0666 less the umask)."""
    os.chmod(fd_or_path, 0o666 & ~umask())


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    _write_via_temp(check_target(path, overwrite), ".tmp", _bytes_writer(data), overwrite)


def replace_with_bytes(target: Path, data: bytes) -> None:
    """Replace `target` (in a folder known to be ours, e.g. a run directory) with `data`, atomically."""
    replace_atomically(target, _bytes_writer(data))


def _bytes_writer(data: bytes):
    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return write


def atomic_write_text(path: str | os.PathLike, text: str, overwrite: bool = True) -> None:
    atomic_write_bytes(path, text.encode("utf-8"), overwrite)


def save_keras_model(keras_model, path: str | os.PathLike, overwrite: bool = False) -> None:
    """Save in Keras v3 format (`.keras`), atomically."""
    target = check_target(path, overwrite)
    if target.suffix != ".keras":
        raise UsageError(f"a Keras model file ends in .keras, not '{target.suffix or target.name}'",
                         hint=f"write e.g. -o {target.with_suffix('.keras').name}", code="E606")
    _write_via_temp(target, ".keras", keras_model.save, overwrite)


def _write_via_temp(target: Path, suffix: str, write, overwrite: bool) -> None:
    """Write with `write(tmp)` into a temporary file beside `target`, then move it into place.

    Without `overwrite`, the move is a hard link, which fails if `target` appeared meanwhile:
    a file someone created between our check and our write is never replaced.
    """
    try:
        replace_atomically(target, write, suffix, overwrite)
    except FileExistsError:
        raise UsageError(f"{target} already exists; archdsl does not overwrite it",
                         hint="choose another name, or remove the file first", code="E603") from None


def replace_atomically(target: Path, write, suffix: str = ".tmp", overwrite: bool = True) -> None:
    """The primitive under every write: `write(tmp)` fills a temporary file beside `target`
    (which `write` must flush to disk), then it becomes `target` in one step and the folder is
    synced. No check of `target`'s folder first (see check_target); an OSError is a RunError
    (E501) naming `target`; FileExistsError is left to the caller."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
        os.close(fd)
        write(tmp)
        _new_file_mode(tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)
            os.unlink(tmp)
    except BaseException as exc:
        if tmp:
            _remove_quietly(tmp)
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise RunError(f"cannot write {target}: {os_reason(exc)}", hint="check free disk space and "
                           "permissions", code="E501") from None
        raise
    _fsync_dir(target.parent)


def os_reason(exc: BaseException) -> str:
    """An exception as a short phrase for a message: the OS's words when there are some."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(exc, 160)


def one_line(exc: BaseException, limit: int = 200) -> str:
    """An exception's message on one line of at most `limit` characters (its type if it has none)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fsync_dir(path: Path) -> None:
    """Make a rename in `path` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (on this host), so leftovers of dead processes can be cleaned up."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. PermissionError: it exists, as another user's
        return True
    return True
