"""An archive of an image folder, made safe to use: unpacked within bounds, and keyed by its content.

data.py loads an archive through this module: `archive_sha256` (the key of its cache entries),
then `unpacked` (the folder it becomes under <data dir>/unpacked/), and `discard` when what it
holds is refused.

An archive unpacks to at most UNPACK_RATIO (20) times its own size, at least UNPACK_FLOOR
(256 MiB), and to at most MAX_MEMBERS (250,000) files and folders; $ARCHDSL_MAX_UNPACKED_BYTES
(a number of bytes, or with K, M, G, T: `8G`) and $ARCHDSL_MAX_MEMBERS replace these bounds.
Unpacking stops before the member that would pass one. An archive refused at any point (a
bound, an unsafe member, a bad image) leaves nothing in the cache.

An archive's entries are keyed by its content: its sha256, computed once and recorded with
the path, size, mtime, ctime, inode and device it was computed for, and used again while
they are unchanged (a rewrite changes the ctime, which no one can set back). Two archives
alike in name, size and mtime do not share an entry.
"""
from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import Callable

from . import image_folder
from .progress import Progress
from archdsl.errors import DataError
from archdsl.fileio import one_line, pid_alive, shown_path, umask

ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar")
# What an archive may unpack to. PNG and JPEG hardly compress further: only tar headers and
# padding and the tables every JPEG repeats do (CIFAR-10's .tar.gz unpacks to 2.8 times its
# size), so a larger ratio is filler, or a bomb (2 MB of gzip can hold 2 GB of zeros).
# $ARCHDSL_MAX_UNPACKED_BYTES (bytes, or with K, M, G, T) replaces the ratio rule by a fixed bound,
# $ARCHDSL_MAX_MEMBERS the member count (files and folders).
UNPACK_RATIO = 20
UNPACK_FLOOR = 256 * 2**20
MAX_MEMBERS = 250_000  # 4 times CIFAR-10's 60,023; tarfile keeps about 1 KB a member in memory


def archive_sha256(archive: Path, cache: Path) -> tuple[str, dict]:
    """The sha256 of `archive`'s bytes, and the identity of the file it is for (path, size, mtime, ctime,
    inode, device): recorded under <cache>/archives/, and computed again only when the identity changed."""
    record = cache / "archives" / f"{archive_stem(archive.name)}-{digest(str(archive))}.json"
    seen = _identity(archive)
    try:
        saved = json.loads(record.read_text(encoding="utf-8"))
        if saved.get("file") == seen and re.fullmatch(r"[0-9a-f]{64}", str(saved.get("sha256"))):
            return saved["sha256"], seen
    except (OSError, ValueError, AttributeError):  # none yet, or damaged: only a cache miss
        pass
    sha256 = _file_sha256(archive)
    if _identity(archive) != seen:
        raise DataError(f"'{archive}' changed while it was read", hint="load it again once it is written in full")
    make_dir(record.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".partial-{record.name}-", dir=record.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"sha256": sha256, "file": seen}, f)
        os.chmod(tmp, 0o666 & ~umask())
        os.replace(tmp, record)
    except OSError:
        pass  # not recorded: hashed again next time, nothing worse
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return sha256, seen


def _identity(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "ctime_ns": st.st_ctime_ns,
            "inode": st.st_ino, "device": st.st_dev}


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f, Progress(f"hashing {path.name}", os.fstat(f.fileno()).st_size, "bytes") as bar:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                bar.advance(len(block))
    except OSError as e:
        raise DataError(f"cannot read '{path}': {one_line(e)}", hint="check that the file is readable") from e
    return digest.hexdigest()


def unpacked(archive: Path, target: Path, identity: dict) -> Path:
    """`target`, holding the files of `archive`: unpacked now unless an earlier run finished it. The
    archive must still be the file of `identity` when it is unpacked (what its hash was computed on)."""
    if target.is_dir():
        return target
    if not hasattr(tarfile, "data_filter"):  # Python < 3.10.12 / 3.11.4
        raise DataError(f"cannot safely unpack '{archive}' with this Python (its tarfile has no data filter)",
                        hint="use Python >= 3.11.4 (or 3.10.12), or unpack the archive yourself and pass the folder")
    bounds = _unpack_bounds(archive)
    make_dir(target.parent)
    _remove_abandoned(target.parent, f".partial-{target.name}-")
    tmp = Path(tempfile.mkdtemp(prefix=f".partial-{target.name}-{os.getpid()}-", dir=target.parent))
    try:
        try:
            with (open(archive, "rb") as raw, tarfile.open(fileobj=raw) as tar,
                  Progress(f"unpacking {archive.name}", os.fstat(raw.fileno()).st_size, "bytes", "members") as bar):
                # the filter sees each member before it is written; raw.tell() is how far the archive was read
                tar.extractall(tmp, filter=_member_filter(archive, *bounds, lambda n: bar.update(raw.tell(), n)))
        except tarfile.FilterError as e:
            raise DataError(f"'{archive}' has an unsafe member: {shown_path(one_line(e))}",
                            hint=UNSAFE_HINT) from e
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DataError(f"'{archive}' is truncated or not a valid .tar.gz: {one_line(e)}",
                            hint="download or build the archive again") from e
        except RecursionError as e:  # tarfile copying a link's target that leads back to it
            raise DataError(f"'{archive}' has links that lead back to themselves", hint=UNSAFE_HINT) from e
        except KeyError as e:  # tarfile: a hard link to a member that is not in the archive (or is itself)
            raise DataError(f"'{archive}' has a hard link to a member it does not hold: {shown_path(one_line(e))}",
                            hint=UNSAFE_HINT) from e
        except OSError as e:
            if e.errno in (errno.EISDIR, errno.EEXIST, errno.ENOTDIR):  # the archive's own members collide
                raise DataError(f"'{archive}' holds members that collide (a file and a folder of one name): "
                                f"{shown_path(one_line(e))}", hint="build the archive again from a folder") from e
            raise DataError(f"cannot unpack '{archive}' into '{target.parent}': {one_line(e)}",
                            hint="free some disk space, or choose another data dir with $ARCHDSL_DATA") from e
        if _identity(archive) != identity:  # a rewrite changes the ctime at least
            raise DataError(f"'{archive}' changed while it was read", hint="load it again once it is written in full")
        image_folder.root(tmp, str(archive))  # refuse an archive without train/ and test/ before caching it
        os.chmod(tmp, 0o777 & ~umask())  # mkdtemp makes it private; the cache is not
        try:
            os.rename(tmp, target)
        except OSError as e:
            if not target.is_dir():  # another process finishing first is fine, anything else is not
                raise DataError(f"cannot unpack '{archive}' into '{target}': {one_line(e)}",
                                hint="choose another data dir with $ARCHDSL_DATA") from e
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


UNSAFE_HINT = ("an archive may hold only files and folders inside itself; "
               "rebuild it without absolute paths, '..' or links out of it")


def _member_filter(archive: Path, max_bytes: int, max_members: int, bound_is: str,
                   on_member: Callable[[int], None] = lambda members: None
                   ) -> Callable[[tarfile.TarInfo, str], tarfile.TarInfo]:
    """tarfile's data filter, called before each member is extracted, which also refuses an absolute
    member (the filter alone strips the '/' and unpacks it inside, where it at best misses the layout
    and at worst shadows a real file) and stops at the bounds, before the member that would pass one.
    `on_member` is told how many members were seen."""
    seen = {"members": 0, "bytes": 0}

    def check(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
        name = shown_path(member.name)
        if member.name.startswith(("/", os.sep)) or os.path.isabs(member.name):
            raise DataError(f"'{archive}' has an unsafe member: '{name}' is an absolute path", hint=UNSAFE_HINT)
        over = os.path.join(dest, member.name)
        if (member.issym() or member.islnk()) and os.path.isdir(over) and not os.path.islink(over):
            # tarfile cannot replace the folder, and then copies the link's target in its place instead:
            # a link to itself, or to a folder above, copies without end
            raise DataError(f"'{archive}' has an unsafe member: '{name}' is a link over a folder of that name",
                            hint=UNSAFE_HINT)
        seen["members"] += 1
        seen["bytes"] += max(member.size, 0)
        on_member(seen["members"])
        if seen["members"] > max_members:
            raise DataError(f"'{archive}' has more than {max_members:,} members ({_members_rule()}): stopped at "
                            f"'{name}'", hint="an image archive needs a member for each image and folder; if it is "
                            "right, raise the bound, e.g. ARCHDSL_MAX_MEMBERS=" + str(2 * max_members))
        if seen["bytes"] > max_bytes:
            raise DataError(f"'{archive}' unpacks to more than {_size(max_bytes)} ({bound_is}): stopped at '{name}'",
                            hint="PNG and JPEG images hardly compress: rebuild the archive without what fills it, "
                                 f"or if it is right, raise the bound, e.g. ARCHDSL_MAX_UNPACKED_BYTES={_size(4 * max_bytes, '')}")
        return tarfile.data_filter(member, dest)
    return check


def _unpack_bounds(archive: Path) -> tuple[int, int, str]:
    """(most bytes, most members, how the byte bound was set) `archive` may unpack to."""
    if os.environ.get("ARCHDSL_MAX_UNPACKED_BYTES", "").strip():
        max_bytes, bound_is = _env_number("ARCHDSL_MAX_UNPACKED_BYTES", units=True), "ARCHDSL_MAX_UNPACKED_BYTES"
    else:
        max_bytes = max(UNPACK_FLOOR, UNPACK_RATIO * archive.stat().st_size)
        bound_is = f"{UNPACK_RATIO} times its size, at least {_size(UNPACK_FLOOR)}"
    members = _env_number("ARCHDSL_MAX_MEMBERS") if os.environ.get("ARCHDSL_MAX_MEMBERS", "").strip() else MAX_MEMBERS
    return max_bytes, members, bound_is


def _members_rule() -> str:
    return "ARCHDSL_MAX_MEMBERS" if os.environ.get("ARCHDSL_MAX_MEMBERS", "").strip() else "the default"


_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _env_number(name: str, units: bool = False) -> int:
    """The positive whole number in $name; with `units`, a K, M, G or T after it multiplies it by 2**10 ..."""
    text = os.environ[name].strip()
    digits, unit = (text[:-1], text[-1].upper()) if units and text[-1:].upper() in "KMGT" else (text, "")
    if not digits.isdigit() or int(digits) < 1:
        what, example = (("a number of bytes (K, M, G or T for KiB ...)", "8G") if units
                         else ("a whole number", str(2 * MAX_MEMBERS)))
        raise DataError(f"{name} must be {what}, got {text!r}", hint=f"e.g. {name}={example}, or unset it for the default")
    return int(digits) * _UNITS[unit]


def _size(n: int, space: str = " ") -> str:
    """Bytes in the largest binary unit that divides them: 268435456 -> '256 MiB' (with space='': '256M',
    what $ARCHDSL_MAX_UNPACKED_BYTES takes)."""
    for unit in "TGMK":
        if n % _UNITS[unit] == 0:
            return f"{n // _UNITS[unit]}{space}{unit}" + ("iB" if space else "")
    return f"{n:,} bytes" if space else str(n)


def discard(folder: Path) -> None:
    """Delete a cache folder: first renamed to a partial name (never trusted, and cleaned up after a
    kill), so no other process takes a half-deleted folder for a whole one."""
    doomed = folder.parent / f".partial-{folder.name}-{os.getpid()}-discarded"
    try:
        os.rename(folder, doomed)
    except OSError:
        return  # gone already (another process), or not ours to move
    shutil.rmtree(doomed, ignore_errors=True)


def _remove_abandoned(parent: Path, prefix: str) -> None:
    """Delete half-unpacked folders left by processes that were killed."""
    for p in parent.iterdir():
        if not p.name.startswith(prefix):
            continue
        try:
            pid = int(p.name[len(prefix):].split("-")[0])
        except ValueError:
            continue
        if not pid_alive(pid):
            shutil.rmtree(p, ignore_errors=True)


def archive_stem(name: str) -> str:
    for suffix in ARCHIVE_SUFFIXES:
        if name.lower().endswith(suffix):
            return name[: -len(suffix)] or "archive"
    return name


# --- the data dir (data.py's cache uses these too) ----------------------------------------

def make_dir(path: Path) -> None:
    """Create a folder of the data dir (and its parents), or refuse with a DataError."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create the data dir '{path}': {one_line(e)}",
                        hint="choose a writable data dir with $ARCHDSL_DATA") from e


def digest(text: str) -> str:
    """The first 16 hex digits of the sha256 of `text`: a short name for a path or a listing."""
    return hashlib.sha256(text.encode()).hexdigest()[:16]
