"""Writing files so that nothing a user has is lost.

Every write goes to a temporary file in the target's folder and is moved into place
with `os.replace`, so a kill mid-write leaves the previous file intact. Outputs that
already exist are refused unless the caller allows replacing them. A file of the user's
that is rewritten (`fmt --write`) is written into, through symlinks, keeping its mode,
owner and hard links (`write_into`).
"""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path

from .display import terminal_text
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


def write_into(path: str | os.PathLike, data: bytes) -> None:
    """Make the file at `path` hold `data`, as an editor saving it would: through a symlink into the file it
    names, keeping that file's mode, owner and hard links.

    Atomic where a rename keeps all of that: `data` goes to a temporary file beside the *resolved* file,
    which gets its mode and owner, and is renamed over it (a kill leaves the old text or the new, never
    half). Where a new file cannot be the same file, the file is rewritten in place instead: when it has
    other hard links (a new inode would leave them with the old text), when its owner cannot be given to
    a new file (another user's file we may write), when it has extended attributes (ACLs, a label) a new
    file would not have, or when its folder takes no new file. In place, the space is reserved first
    (posix_fallocate), so a full disk fails before a byte changes; a kill mid-write can still leave a
    mixture of the two texts. A file we may not write is refused either way, as an editor would."""
    given = os.fspath(path)
    target = Path(os.path.realpath(given))
    name = shown_path(given) if str(target) == os.path.abspath(given) else \
        f"{shown_path(given)} (a link to {shown_path(target)})"
    try:
        st = os.stat(target)
        if not stat.S_ISREG(st.st_mode):
            raise RunError(f"cannot write {name}: not a regular file", hint="name a spec file", code="E501")
        if not os.access(target, os.W_OK):
            raise PermissionError(13, os.strerror(13))
        if st.st_nlink == 1 and not _extended_attributes(target) and _replace_keeping(target, st, data):
            return
        _rewrite_in_place(target, data)
    except OSError as exc:
        raise RunError(f"cannot write {name}: {os_reason(exc)}", hint="check free disk space and permissions",
                       code="E501") from None


def _replace_keeping(target: Path, st: os.stat_result, data: bytes) -> bool:
    """Replace `target` by a new file with `data` and `st`'s mode and owner; False (nothing done) when
    the new file cannot have them, or cannot be made in `target`'s folder. Other OSErrors are raised,
    with `target` untouched."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except PermissionError:
        return False
    try:
        with os.fdopen(fd, "wb") as f:
            made = os.fstat(fd)
            if (made.st_uid, made.st_gid) != (st.st_uid, st.st_gid):
                try:
                    os.fchown(fd, st.st_uid, st.st_gid)
                except OSError:  # not ours to give away
                    _remove_quietly(tmp)
                    return False
            os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after fchown, which clears set-id bits
            f.write(data)
            f.flush()
            os.fsync(fd)
        os.replace(tmp, target)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(target.parent)
    return True


def _rewrite_in_place(target: Path, data: bytes) -> None:
    fd = os.open(target, os.O_WRONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if len(data) > os.fstat(fd).st_size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(fd, 0, len(data))
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):  # ENOSPC: nothing written yet
                    raise
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.ftruncate(fd, len(data))
        os.fsync(fd)
    finally:
        os.close(fd)


def _extended_attributes(path: Path) -> bool:
    """Whether `path` has extended attributes (an ACL, user.*) that a new file beside it would not get.
    An SELinux label is not counted: a new file gets its folder's, as an editor's saved copy does."""
    try:
        names = os.listxattr(path)
    except (AttributeError, OSError):  # no xattrs on this platform or file system
        return False
    return any(n != "security.selinux" for n in names)


def os_reason(exc: BaseException) -> str:
    """An exception as a short phrase for a message: the OS's words when there are some."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return one_line(exc, 160)


def shown_path(path: str | os.PathLike) -> str:
    """A file name as printed on a terminal: control characters (newline, escape, DEL), format characters
    (bidi overrides, zero-width), line and paragraph separators and surrogates (undecodable bytes of the
    name) as Python escapes (`\\n`, `\\x1b`, `\\u202e`, `\\udcff`), so a name cannot colour the terminal,
    move the cursor, reorder a line or forge one. Other text, non-ASCII letters included, is kept."""
    return terminal_text(os.fsdecode(path))


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
