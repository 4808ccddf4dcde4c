"""Adversarial data (issue 27): what an image folder or a .tar.gz of one can hold besides small images.

- files in a format other than PNG or JPEG, whatever their name (an EPS named e.jpg would make PIL
  look for Ghostscript; TIFF, BMP, GIF, WebP would train): refused, naming the file, never decoded;
- images far larger than the data's (a 13000x13000 PNG is 165 KB on disk, 169 MB decoded): each
  image's size is read from its header before it is decoded, and one larger than the bound, or unlike
  the first image, is refused undecoded; `limit` decodes only the images it selects (the others'
  headers are still checked). These run in a child process whose address space is limited
  (RLIMIT_AS), so a regression fails with a MemoryError instead of swapping, and whose peak RSS is
  bounded;
- archive bombs: a small .tar.gz that unpacks to far more than it holds (2 MB of gzip held 2 GB of
  zeros), or to a great many members: unpacking stops at the bound (ARCHDSL_MAX_UNPACKED_BYTES,
  ARCHDSL_MAX_MEMBERS), and an archive refused at any point (by the bounds, or later by its
  contents) leaves nothing in the cache;
- two archives that look alike (same name, size and mtime, in different folders; or one file
  rewritten in place with its mtime put back): each gets its own cache entry, keyed by a sha256 of its
  content, which is computed once and re-checked cheaply (path, size, mtime, ctime, inode); the hash
  comes with the dataset, and a training run records it;
- an archive member with an absolute path: refused as unsafe like `../`, naming the member (tarfile's
  data filter alone would strip the `/` and unpack it); control characters in names are escaped.
"""
from __future__ import annotations

import hashlib
import io
import os
import resource
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from test_data import load_error, make_folder, make_targz, pixel, write_png

import archdsl
from archdsl.training import train
from archdsl.training.archives import MAX_MEMBERS
from archdsl.training.data import load_dataset

ROOT = Path(__file__).resolve().parent.parent
EPS = ("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 5 6\n%%EndComments\n"
       "newpath 0 0 moveto 5 6 lineto stroke\nshowpage\n%%EOF\n")


# --- formats: PNG and JPEG only, by content --------------------------------------------------

@pytest.mark.parametrize("fmt", ["EPS", "TIFF", "BMP", "GIF", "WEBP", "PPM", "ICO"])
def test_a_format_other_than_png_or_jpeg_is_refused_whatever_its_name(tmp_path, monkeypatch, fmt):
    root = make_folder(tmp_path / "d")
    bad = root / "train" / "bee" / "e.jpg"
    if fmt == "EPS":
        bad.write_text(EPS)
    else:
        Image.fromarray(pixel("train", 1, 9)).save(bad, format=fmt)
    monkeypatch.setattr(EpsImagePlugin, "has_ghostscript", lambda: pytest.fail("Ghostscript was looked for"))
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: pytest.fail("Ghostscript was run"))
    err = load_error(str(root), data_dir=tmp_path / "cache")
    assert err.message == f"'{bad}' is not an image file (PNG or JPEG)"
    assert "PNG or JPEG" in err.hint


def test_png_and_jpeg_are_read_by_content_not_by_name(tmp_path):
    root = make_folder(tmp_path / "d")
    Image.fromarray(pixel("train", 0, 9)).save(root / "train" / "ant" / "png-named.jpg", format="PNG")
    Image.fromarray(pixel("train", 0, 9)).save(root / "train" / "ant" / "jpeg-named.png", format="JPEG")
    ds = load_dataset(str(root), data_dir=tmp_path / "cache")
    assert ds.x_train.shape == (14, 6, 5, 3)
    assert sum(np.array_equal(im, pixel("train", 0, 9)) for im in ds.x_train) >= 1  # the PNG, exact


# --- archive members that leave the archive --------------------------------------------------

def _add_file(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)  # TarInfo keeps a leading '/' (tar.add would strip it)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


@pytest.mark.parametrize("where", ["whole tree", "one member", "control characters"])
def test_an_absolute_member_is_refused_as_unsafe_not_re_rooted(tmp_path, where):
    folder = make_folder(tmp_path / "src")
    archive = tmp_path / "abs.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        if where == "whole tree":
            for path in sorted(folder.rglob("*.png")):
                _add_file(tar, f"/pets/{path.relative_to(folder)}", path.read_bytes())
            member, shown = "/pets/test/ant/00.png", "/pets/test/ant/00.png"
        else:
            tar.add(folder, arcname="pets")
            member = "/tmp/evil.png" if where == "one member" else "/tmp/e\x1b[31m\nvil.png"
            shown = member.replace("\x1b", "\\x1b").replace("\n", "\\n")
            _add_file(tar, member, b"\x89PNG")
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert err.message == f"'{archive}' has an unsafe member: '{shown}' is an absolute path"
    assert "absolute paths" in err.hint
    assert list((tmp_path / "cache" / "unpacked").iterdir()) == []


def test_control_characters_in_a_file_name_are_escaped(tmp_path):
    root = make_folder(tmp_path / "d")
    (root / "train" / "bee" / "x\x1b[2J\n.png").write_text("not a picture")
    err = load_error(str(root), data_dir=tmp_path / "cache")
    assert err.message == f"'{root / 'train' / 'bee'}/x\\x1b[2J\\n.png' is not an image file (PNG or JPEG)"


# --- image sizes: read from the header, before decoding ----------------------------------------

# importing numpy and PIL and loading a small folder peaks at about 160 MB of address space (VmPeak,
# 2026-12) and 40 MB RSS; one 13000x13000 grayscale image decoded is 169 MB, four are 676 MB. The
# child's peak RSS is its VmHWM, not ru_maxrss, which Linux keeps across fork and exec (a child of a
# pytest process that ran TensorFlow would report that parent's peak).
ADDRESS_SPACE = 512 * 2**20
PEAK_RSS_KB = 120 * 1024
LOAD = """
import re, sys
from archdsl.errors import DataError
from archdsl.training.data import load_dataset
try:
    ds = load_dataset(sys.argv[1], data_dir=sys.argv[2], limit=int(sys.argv[3]) if sys.argv[3:] else None)
    print("loaded", ds.x_train.shape, ds.x_test.shape)
except DataError as e:
    print(e.message)
sys.stdout.flush()
with open("/proc/self/status") as status:
    sys.stderr.write("peak_rss_kb %s\\n" % re.search(r"^VmHWM:\\s+(\\d+) kB", status.read(), re.M).group(1))
"""


def load_limited(path: Path, data_dir: Path, *limit: int) -> tuple[str, int]:
    """(what `load_dataset` printed: the DataError's message or the shapes, peak RSS in kB) in a child
    process with its address space limited; one that does not end within 60 s fails the test."""
    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))

    done = subprocess.run([sys.executable, "-c", LOAD, str(path), str(data_dir), *map(str, limit)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, preexec_fn=limit_memory,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1"))
    assert "Traceback" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.rstrip("\n").rpartition("\n")[2]
    assert last.startswith("peak_rss_kb "), done.stderr[-2000:]
    return done.stdout.strip(), int(last.split()[1])


def big_png(path: Path, width: int, height: int) -> Path:
    """A valid grayscale PNG of zeros, compressed row by row: small on disk, width*height bytes decoded."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))

    squeeze, row = zlib.compressobj(9), bytes(1 + width)
    idat = b"".join([squeeze.compress(row) for _ in range(height)] + [squeeze.flush()])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    return big_png(tmp_path_factory.mktemp("huge") / "huge.png", 13000, 13000)  # 165 KB


def small_folder(root: Path) -> Path:
    """8x8 RGB images: train/a, train/b 8 each, test/a, test/b 2 each."""
    for split, n in (("train", 8), ("test", 2)):
        for cls in ("a", "b"):
            for i in range(n):
                write_png(root / split / cls / f"{i:02d}.png", np.full((8, 8, 3), i, np.uint8))
    return root


def test_huge_images_beside_small_ones_are_refused_from_their_headers(tmp_path, huge_png):
    """Issue 27's case: four 13000x13000 PNGs beside 8x8 images, limit 8 (peaked at 3.66 GB)."""
    root = small_folder(tmp_path / "d")
    for i in range(4):
        shutil.copy(huge_png, root / "train" / "a" / f"zbig{i}.png")
    said, rss = load_limited(root, tmp_path / "cache", 8)
    assert said == (f"'{root / 'train' / 'a' / 'zbig0.png'}' is 13000x13000 but '{root / 'train' / 'a' / '00.png'}' "
                    "is 8x8: all images must have the same size")
    assert rss < PEAK_RSS_KB


def test_a_first_image_over_the_bound_is_refused_undecoded(tmp_path, huge_png):
    root = small_folder(tmp_path / "d")
    shutil.copy(huge_png, root / "train" / "a" / "00.png")
    said, rss = load_limited(root, tmp_path / "cache")
    assert said == (f"'{root / 'train' / 'a' / '00.png'}' is 13000x13000, more than the 16,777,216 pixels "
                    "(4096x4096) an image may have")
    assert rss < PEAK_RSS_KB


def test_the_pixel_bound_is_overridable(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d")  # 6x5 images
    monkeypatch.setenv("ARCHDSL_MAX_IMAGE_PIXELS", "29")
    err = load_error(str(root), data_dir=tmp_path / "cache")
    assert err.message.endswith("is 6x5, more than the 29 pixels an image may have")
    assert "ARCHDSL_MAX_IMAGE_PIXELS" in err.hint
    monkeypatch.setenv("ARCHDSL_MAX_IMAGE_PIXELS", "30")
    assert load_dataset(str(root), data_dir=tmp_path / "cache").image_shape == (6, 5, 3)
    monkeypatch.setenv("ARCHDSL_MAX_IMAGE_PIXELS", "lots")
    err = load_error(str(root), data_dir=tmp_path / "cache2")
    assert err.message == "ARCHDSL_MAX_IMAGE_PIXELS must be a whole number of pixels, got 'lots'"


def _damage_pixels(path: Path) -> None:
    """Keep the header (size and mode still read), cut the pixel data: only decoding finds it."""
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"IDAT") + 8])


def test_limit_decodes_only_the_images_it_selects(tmp_path):
    root = make_folder(tmp_path / "d", counts={"a": 6, "b": 6}, test=3)
    _damage_pixels(root / "train" / "a" / "05.png")   # the last of the stratified order
    _damage_pixels(root / "test" / "b" / "02.png")
    ds = load_dataset(str(root), data_dir=tmp_path / "cache", limit=10, test_limit=5)
    assert ds.x_train.shape == (10, 6, 5, 3) and ds.x_test.shape == (5, 6, 5, 3)
    assert ds.y_train.tolist() == [0, 1] * 5
    for k, (label, img) in enumerate(zip(ds.y_train, ds.x_train)):
        np.testing.assert_array_equal(img, pixel("train", label, k // 2))
    err = load_error(str(root), data_dir=tmp_path / "cache")  # the whole split reaches the damaged file
    assert err.message.startswith(f"'{root / 'train' / 'a' / '05.png'}' is a corrupt or truncated image")


def test_a_limit_keeps_the_channels_and_refusals_of_the_whole_data(tmp_path):
    """Headers of unselected images are read: a limit gives the same channels, and refuses the same sizes."""
    root = tmp_path / "g"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            for i in range(3):
                write_png(root / split / cls / f"{i}.png", np.full((6, 5), 10 * i, np.uint8))
    write_png(root / "train" / "b" / "2.png", pixel("train", 1, 2))  # the only RGB image, not selected
    ds = load_dataset(str(root), data_dir=tmp_path / "cache", limit=2, test_limit=1)
    assert ds.x_train.shape == (2, 6, 5, 3)
    np.testing.assert_array_equal(ds.x_train[0], np.zeros((6, 5, 3), np.uint8))
    write_png(root / "test" / "b" / "2.png", np.zeros((7, 5), np.uint8))
    err = load_error(str(root), data_dir=tmp_path / "cache2", limit=2, test_limit=1)
    assert err.message == (f"'{root / 'test' / 'b' / '2.png'}' is 7x5 but '{root / 'train' / 'a' / '0.png'}' is 6x5: "
                           "all images must have the same size")


def test_a_limited_load_is_cached_and_replaced_by_the_whole(tmp_path):
    root = make_folder(tmp_path / "d[1]", counts={"a": 6, "b": 6}, test=3)  # [1]: no glob pattern
    cache = tmp_path / "cache"
    small = load_dataset(str(root), data_dir=cache, limit=4)
    assert len(list((cache / "decoded").glob("*.npz"))) == 1
    again = load_dataset(str(root), data_dir=cache, limit=4)
    np.testing.assert_array_equal(small.x_train, again.x_train)
    whole = load_dataset(str(root), data_dir=cache)
    np.testing.assert_array_equal(whole.x_train[:4], small.x_train)
    assert len(list((cache / "decoded").glob("*.npz"))) == 1, "the whole split's cache supersedes the limited one"
    assert len(load_dataset(str(root), data_dir=cache, limit=4).x_train) == 4


# --- archive bombs: bounded unpacking, nothing left behind --------------------------------------

class Zeros(io.RawIOBase):
    """`n` zero bytes, read without holding them."""

    def __init__(self, n: int):
        self.left = n

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        k = min(len(buffer), self.left)
        buffer[:k] = bytes(k)
        self.left -= k
        return k


def zeros_archive(archive: Path, folder: Path, sizes: dict[str, int]) -> Path:
    """`folder` as pets/ in a .tar.gz, then members of zeros: {name under pets/: size}."""
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="pets")
        for name, size in sizes.items():
            info = tarfile.TarInfo(f"pets/{name}")
            info.size = size
            tar.addfile(info, io.BufferedReader(Zeros(size), 1 << 20))
    return archive


def cache_leftovers(cache: Path) -> list[str]:
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")) if cache.exists() else []


def test_a_zip_bomb_stops_at_the_default_bound_and_leaves_nothing(tmp_path):
    """300 MB of zeros in 300 KB of gzip: over the default (20 times the archive, at least 256 MiB);
    refused at that member, before a byte of it is written."""
    folder = make_folder(tmp_path / "src")
    archive = zeros_archive(tmp_path / "bomb.tar.gz", folder, {"train/ant/zeros.png": 300 * 10**6})
    assert archive.stat().st_size < 10**6
    cache = tmp_path / "cache"
    err = load_error(str(archive), data_dir=cache)
    assert err.message == (f"'{archive}' unpacks to more than 256 MiB (20 times its size, at least 256 MiB): "
                           "stopped at 'pets/train/ant/zeros.png'")
    assert "ARCHDSL_MAX_UNPACKED_BYTES" in err.hint
    assert [p for p in cache_leftovers(cache) if not p.startswith("archives")] == ["unpacked"]


def test_the_unpacked_bound_is_overridable_and_counts_every_member(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "src")
    archive = zeros_archive(tmp_path / "pets.tar.gz", folder, {f"train/ant/z{i}.png": 400_000 for i in range(4)})
    monkeypatch.setenv("ARCHDSL_MAX_UNPACKED_BYTES", "1M")
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert err.message == f"'{archive}' unpacks to more than 1 MiB (ARCHDSL_MAX_UNPACKED_BYTES): stopped at 'pets/train/ant/z2.png'"
    assert [p for p in cache_leftovers(tmp_path / "cache") if not p.startswith("archives")] == ["unpacked"]
    monkeypatch.setenv("ARCHDSL_MAX_UNPACKED_BYTES", "2000000")  # now it unpacks, and fails on its zeros
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert err.message == f"'{archive}:pets/train/ant/z0.png' is not an image file (PNG or JPEG)"
    monkeypatch.setenv("ARCHDSL_MAX_UNPACKED_BYTES", "a lot")
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert err.message == "ARCHDSL_MAX_UNPACKED_BYTES must be a number of bytes (K, M, G or T for KiB ...), got 'a lot'"


def test_too_many_members_stop_the_unpacking(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "src")  # 18 images in 6 class folders, train/, test/ and pets/: 27 members
    archive = make_targz(tmp_path / "pets.tar.gz", folder, "pets")
    monkeypatch.setenv("ARCHDSL_MAX_MEMBERS", "26")
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert err.message == f"'{archive}' has more than 26 members (ARCHDSL_MAX_MEMBERS): stopped at 'pets/train/cat/03.png'"
    assert "ARCHDSL_MAX_MEMBERS" in err.hint
    assert [p for p in cache_leftovers(tmp_path / "cache") if not p.startswith("archives")] == ["unpacked"]
    monkeypatch.setenv("ARCHDSL_MAX_MEMBERS", "27")
    assert len(load_dataset(str(archive), data_dir=tmp_path / "cache").x_train) == 12
    assert MAX_MEMBERS == 250_000


def test_an_archive_refused_for_its_contents_leaves_no_unpacked_copy(tmp_path):
    folder = make_folder(tmp_path / "src")
    (folder / "train" / "bee" / "notes.txt").write_text("not a picture")
    archive = make_targz(tmp_path / "pets.tar.gz", folder, "pets")
    cache = tmp_path / "cache"
    err = load_error(str(archive), data_dir=cache)
    assert err.message == f"'{archive}:pets/train/bee/notes.txt' is not an image file (PNG or JPEG)"
    assert list((cache / "unpacked").iterdir()) == []


# --- archive caches keyed by content ----------------------------------------------------------

def two_alike_archives(tmp_path: Path) -> tuple[Path, Path]:
    """data.tar in two folders: other classes and pixels, the same size (each PNG is padded to 512
    bytes) and the same mtime."""
    first = make_folder(tmp_path / "src1", counts={"ant": 2, "bee": 2}, test=1)
    second = tmp_path / "src2"
    for c, cls in enumerate(("cow", "dog")):
        for split, n in (("train", 2), ("test", 1)):
            for i in range(n):
                write_png(second / split / cls / f"{i:02d}.png", pixel(split, c, i) + 100)
    archives = []
    for n, folder in ((1, first), (2, second)):
        (tmp_path / f"a{n}").mkdir()
        with tarfile.open(tmp_path / f"a{n}" / "data.tar", "w") as tar:
            tar.add(folder, arcname="data")
        archives.append(tmp_path / f"a{n}" / "data.tar")
    for a in archives:
        os.utime(a, ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    assert archives[0].stat().st_size == archives[1].stat().st_size
    return archives[0], archives[1]


def test_two_archives_alike_in_name_size_and_mtime_each_load_their_own_data(tmp_path):
    one, two = two_alike_archives(tmp_path)
    cache = tmp_path / "cache"
    first = load_dataset(str(one), data_dir=cache)
    second = load_dataset(str(two), data_dir=cache)
    assert first.class_names == ("ant", "bee") and second.class_names == ("cow", "dog")
    np.testing.assert_array_equal(second.x_train[0], pixel("train", 0, 0) + 100)
    assert first.archive_sha256 == hashlib.sha256(one.read_bytes()).hexdigest()
    assert second.archive_sha256 == hashlib.sha256(two.read_bytes()).hexdigest()


def test_an_archive_rewritten_in_place_with_its_mtime_put_back_is_read_again(tmp_path):
    one, two = two_alike_archives(tmp_path)
    cache = tmp_path / "cache"
    assert load_dataset(str(one), data_dir=cache).class_names == ("ant", "bee")
    stamp = one.stat().st_mtime_ns
    one.write_bytes(two.read_bytes())  # same size; only the ctime (which no one can set) tells
    os.utime(one, ns=(stamp, stamp))
    again = load_dataset(str(one), data_dir=cache)
    assert again.class_names == ("cow", "dog")
    assert again.archive_sha256 == hashlib.sha256(two.read_bytes()).hexdigest()


def test_the_hash_is_computed_once_then_rechecked_cheaply(tmp_path, monkeypatch):
    one, _ = two_alike_archives(tmp_path)
    cache = tmp_path / "cache"
    first = load_dataset(str(one), data_dir=cache)
    monkeypatch.setattr("archdsl.training.archives._file_sha256", lambda *a: pytest.fail("an unchanged archive is hashed again"))
    again = load_dataset(str(one), data_dir=cache, limit=2)
    assert again.archive_sha256 == first.archive_sha256
    assert load_dataset(str(make_folder(tmp_path / "f")), data_dir=cache).archive_sha256 is None


def test_a_training_run_records_the_archive_hash(tmp_path):
    one, _ = two_alike_archives(tmp_path)
    dataset = load_dataset(str(one), data_dir=tmp_path / "cache")
    model = archdsl.loads("input 6x5x3\nclasses 2\nconv 3x3 4 same relu\ngap\ndense classes\nsoftmax\n")
    state = train._initial_state(model, dataset, 0, None)
    assert state["data"]["archive_sha256"] == hashlib.sha256(one.read_bytes()).hexdigest()
