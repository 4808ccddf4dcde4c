"""Hostile dataset archives at random: whatever a .tar.gz holds, loading it ends in a dataset or a DataError.

Hypothesis builds archives from members a careless or hostile user could put there: the expected
layout's folders and images (tiny PNGs and JPEGs, some truncated or in another format), names with
`..`, absolute paths, control characters, deep nesting, symbolic and hard links (inside and out),
device and FIFO entries, empty and oversized (sparse) members. Each case checks:
- `load_dataset` returns a Dataset or raises archdsl's DataError: no other exception, no traceback;
- nothing is written outside the case's own data folder (a sentinel folder beside it stays empty, and
  no link or file the archive names appears outside);
- a refused archive leaves no unpacked copy in the cache.
The default profile runs 60 cases; `ARCHDSL_FUZZ_ARCHIVES=10000 pytest -m slow tests/test_archive_fuzz.py`
is the long one (docs/testing.md records its last run).
"""
from __future__ import annotations

import gzip
import io
import os
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from archdsl.errors import DataError
from archdsl.training.data import Dataset, load_dataset

LONG = int(os.environ.get("ARCHDSL_FUZZ_ARCHIVES", "10000"))


def _image(fmt: str, size: int, colour: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), (colour, 255 - colour, 7)).save(out, format=fmt)
    return out.getvalue()


SMALL_PNG = [_image("PNG", 4, c) for c in (0, 90, 200)]
SMALL_JPEG = [_image("JPEG", 4, c) for c in (10, 128)]
OTHER = [_image("BMP", 4, 3), _image("GIF", 4, 3), _image("PNG", 6, 1)]

names = st.one_of(
    st.sampled_from(["d/train/a/0.png", "d/train/b/1.png", "d/test/a/2.png", "d/test/b/3.jpg", "d/train/a/4.jpg",
                     "d/test/a/5.png", "d/train/b/6.png", "d/test/b/7.png"]),
    st.sampled_from(["../evil.png", "/abs/evil.png", "d/train/../../evil.png", "d/train/a/\x1b[2J.png",
                     "d/train/a\nb/1.png", "d/../d/train/a/9.png", "d/train/" + "x/" * 40 + "deep.png",
                     "d/train/a/.hidden.png", "d/test/c/only_in_test.png", "d", "d/train", "./d/test/a/8.png"]),
    st.text(alphabet="abtr/._\\-é", min_size=1, max_size=24),
)
contents = st.one_of(st.sampled_from(SMALL_PNG + SMALL_JPEG + OTHER),
                     st.sampled_from(SMALL_PNG).map(lambda b: b[: len(b) // 2]),  # truncated
                     st.binary(max_size=64))
# a well-formed dataset that the hostile members are added to, half the time: they must not break it silently
VALID = [(f"d/{split}/{cls}/{i}.png", "file", SMALL_PNG[i % 3], "") for split in ("train", "test")
         for cls in ("a", "b") for i in range(2)]
hostile = st.lists(st.tuples(names, st.sampled_from(["file", "file", "file", "dir", "symlink", "hardlink",
                                                     "fifo", "chardev", "sparse"]),
                             contents, st.sampled_from(["d/train/a/0.png", "/etc/passwd", "../../outside", "d"])),
                   min_size=0, max_size=14)
members = st.tuples(st.booleans(), hostile).map(lambda t: (VALID if t[0] else []) + t[1])


def _archive(path: Path, spec) -> None:
    raw = io.BytesIO()
    truncated = None
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, kind, data, target in spec:
            info = tarfile.TarInfo(name)
            if kind == "file":
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            elif kind == "sparse":  # a member that claims 2 GiB, then the archive ends: cut off
                info.size = 2 * 2**30
                truncated = info.tobuf()
                break
            else:
                info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
                             "fifo": tarfile.FIFOTYPE, "chardev": tarfile.CHRTYPE}[kind]
                info.linkname = target if kind in ("symlink", "hardlink") else ""
                tar.addfile(info)
    data = raw.getvalue()
    if truncated is not None:  # the header without its 2 GiB and without the end-of-archive blocks
        data = data.rstrip(b"\0") + truncated
    path.write_bytes(gzip.compress(data))


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


def _one_case(tmp: Path, spec) -> None:
    case = tmp / f"case{len(list(tmp.iterdir()))}"
    case.mkdir()
    sentinel = case / "beside"
    sentinel.mkdir()
    archive = case / "data.tar.gz"
    _archive(archive, spec)
    cache = case / "cache"
    before = _files(tmp) - _files(case)
    try:
        dataset = load_dataset(archive, data_dir=cache)
    except DataError:
        unpacked = [p for p in _files(cache) if p.is_dir() and p.name.startswith("data")]
        assert not [p for p in unpacked if any(p.iterdir())], f"a refused archive left {unpacked}"
    else:
        # a one-class dataset loads (train and eval refuse it, E4xx, as they should)
        assert isinstance(dataset, Dataset) and dataset.class_names and len(dataset.x_train) >= 1
    assert not any(sentinel.iterdir()), "something was written beside the data folder"
    assert _files(tmp) - _files(case) == before, "something was written outside the case"
    assert not Path("/abs/evil.png").exists() and not (tmp / "evil.png").exists()


def _cases(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large])


@_cases(60)
@given(members)
def test_hostile_archives_end_in_a_dataset_or_a_data_error(tmp_path, spec):
    _one_case(tmp_path, spec)


@pytest.mark.slow
@_cases(LONG)
@given(members)
def test_hostile_archives_long_profile(tmp_path, spec):
    _one_case(tmp_path, spec)


@pytest.mark.parametrize("spec", [
    # found by this fuzzer: a hard link to a member the archive does not hold was a KeyError traceback
    VALID + [("d/train/a/9.png", "hardlink", b"", "d/train/a/missing.png")],
    [("d/train/a/0.png", "hardlink", b"", "d/train/a/0.png")] + VALID,
    # and a file and a folder of one name said "free some disk space"
    [("d", "file", b"x", "")] + VALID,
    # the long profile (case 2,576): a symbolic link over a folder, to itself; tarfile, unable to replace the
    # folder, copies the link's target instead, which is the link: a RecursionError traceback
    VALID + [("d", "symlink", b"", "d")],
], ids=["hardlink-to-nothing", "hardlink-to-itself", "file-then-folder", "symlink-over-folder-to-itself"])
def test_archives_the_fuzzer_found(tmp_path, spec):
    archive = tmp_path / "data.tar.gz"
    _archive(archive, spec)
    with pytest.raises(DataError) as caught:
        load_dataset(archive, data_dir=tmp_path / "cache")
    assert "disk space" not in (caught.value.hint or "")
