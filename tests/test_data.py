"""archdsl.training.data: image folders, archives, caches, limits, errors, and the shared CIFAR-10 archive."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import archdsl.training.data as data
import archdsl.training.image_decode as image_decode
from archdsl.training.data import Dataset, check_fits, default_data_dir, load_dataset, stratified_order
from archdsl.errors import DataError

CIFAR_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")


# --- helpers ---------------------------------------------------------------------------------

def pixel(split: str, cls: int, i: int, shape=(6, 5, 3)) -> np.ndarray:
    """A distinct, recognisable RGB image: its first values say where it came from."""
    img = np.full(shape, 7, dtype=np.uint8)
    img.flat[:3] = (1 if split == "train" else 2, 10 + cls, 20 + i)
    return img


def write_png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path, format="PNG")


def make_folder(root: Path, counts: dict[str, int] | None = None, test: int = 2,
                shape=(6, 5, 3)) -> Path:
    """root/train/<class>/NN.png and root/test/<class>/NN.png with `pixel` images."""
    counts = counts or {"cat": 4, "ant": 4, "bee": 4}
    for c, cls in enumerate(sorted(counts)):
        for split, n in (("train", counts[cls]), ("test", test)):
            for i in range(n):
                write_png(root / split / cls / f"{i:02d}.png", pixel(split, c, i, shape))
    return root


def make_targz(archive: Path, folder: Path, arcname: str) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return archive


def load_error(*args, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_dataset(*args, **kwargs)
    err = info.value
    assert "\n" not in err.message, "a DataError message is one line"
    assert err.hint, "every DataError says how to fix it"
    return err


# --- image folders ---------------------------------------------------------------------------

def test_folder_loads_exact_pixels_labels_and_sorted_classes(tmp_path):
    root = make_folder(tmp_path / "pets")
    ds = load_dataset(str(root), data_dir=tmp_path / "cache")
    assert isinstance(ds, Dataset)
    assert ds.class_names == ("ant", "bee", "cat")
    assert ds.x_train.shape == (12, 6, 5, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (6, 6, 5, 3)
    assert ds.y_train.dtype == np.int64 and ds.y_train.shape == (12,)
    assert ds.source == str(root.resolve())
    # interleaved classes, each in file-name order; PNG is lossless, so pixels are exact
    assert ds.y_train.tolist() == [0, 1, 2] * 4
    for k, (label, img) in enumerate(zip(ds.y_train, ds.x_train)):
        np.testing.assert_array_equal(img, pixel("train", label, k // 3))
    for k, (label, img) in enumerate(zip(ds.y_test, ds.x_test)):
        np.testing.assert_array_equal(img, pixel("test", label, k // 3))
    assert "train=12" in repr(ds) and "6x5x3" in repr(ds)


def test_limit_takes_a_class_balanced_prefix(tmp_path):
    root = make_folder(tmp_path / "d", counts={"a": 6, "b": 6, "c": 6}, test=3)
    ds = load_dataset(str(root), data_dir=tmp_path / "cache", limit=7, test_limit=4)
    assert ds.y_train.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert ds.y_test.tolist() == [0, 1, 2, 0]
    full = load_dataset(str(root), data_dir=tmp_path / "cache", limit=1000)
    assert len(full.x_train) == 18
    np.testing.assert_array_equal(full.x_train[:7], ds.x_train)
    assert ds.x_train.base is None, "a limited split does not keep the full array alive"


def test_limit_follows_class_proportions_when_unbalanced(tmp_path):
    root = make_folder(tmp_path / "d", counts={"big": 8, "small": 4}, test=1)
    ds = load_dataset(str(root), data_dir=tmp_path / "cache", limit=6)
    assert np.bincount(ds.y_train).tolist() == [4, 2]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 5), min_size=1, max_size=80))
def test_stratified_order_keeps_every_prefix_near_the_class_proportions(labels):
    labels = np.array(labels)
    order = stratified_order(labels)
    assert sorted(order.tolist()) == list(range(len(labels)))
    n, classes = len(labels), np.unique(labels)
    for c in classes:  # each class keeps its own order
        picked = order[labels[order] == c]
        assert (np.diff(picked) > 0).all()
    counts = np.bincount(labels)
    for k in range(1, n + 1):
        got = np.bincount(labels[order[:k]], minlength=len(counts))
        bound = 0.5 + len(classes) * counts / (2 * n) + 1e-9
        assert (np.abs(got - k * counts / n) <= bound).all()


def test_grayscale_is_one_channel_and_mixed_modes_become_rgb(tmp_path):
    gray = np.arange(30, dtype=np.uint8).reshape(6, 5)
    root = tmp_path / "g"
    for split in ("train", "test"):
        for cls in ("a", "b"):
            (root / split / cls).mkdir(parents=True)
            Image.fromarray(gray).save(root / split / cls / "0.png")
    ds = load_dataset(str(root), data_dir=tmp_path / "cache")
    assert ds.x_train.shape == (2, 6, 5, 1)
    np.testing.assert_array_equal(ds.x_train[0, :, :, 0], gray)

    rgb = pixel("train", 0, 0)
    write_png(root / "train" / "a" / "1.png", rgb)
    rgba = np.dstack([rgb, np.full((6, 5), 9, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(root / "train" / "b" / "1.png")
    ds = load_dataset(str(root), data_dir=tmp_path / "cache")
    assert ds.x_train.shape == (4, 6, 5, 3)
    by_name = {tuple(img[0, 0]): img for img in ds.x_train}
    np.testing.assert_array_equal(by_name[(0, 0, 0)], np.repeat(gray[..., None], 3, axis=2))
    assert sum(np.array_equal(img, rgb) for img in ds.x_train) == 2  # alpha dropped


def test_jpeg_folder_and_hidden_files_are_ignored(tmp_path):
    root = tmp_path / "j"
    for split in ("train", "test"):
        for cls in ("x", "y"):
            (root / split / cls).mkdir(parents=True)
            Image.fromarray(pixel(split, 0, 0, (8, 8, 3))).save(root / split / cls / "a.jpg", quality=95)
            (root / split / cls / ".DS_Store").write_bytes(b"junk")
    ds = load_dataset(str(root), data_dir=tmp_path / "cache")
    assert ds.x_train.shape == (2, 8, 8, 3)


# --- caches ----------------------------------------------------------------------------------

def test_folder_cache_is_reused_and_refreshed_when_a_file_changes(tmp_path, monkeypatch):
    root = make_folder(tmp_path / "d")
    cache = tmp_path / "cache"
    first = load_dataset(str(root), data_dir=cache)
    calls = []
    real = image_decode._decode_chunk
    monkeypatch.setattr(image_decode, "_decode_chunk", lambda paths, *a: calls.append(len(paths)) or real(paths, *a))
    again = load_dataset(str(root), data_dir=cache)
    assert calls == [], "a cached folder is not decoded again"
    np.testing.assert_array_equal(first.x_train, again.x_train)

    changed = pixel("train", 0, 0).copy()
    changed[1, 1] = (200, 201, 202)
    target = root / "train" / "ant" / "00.png"
    write_png(target, changed)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    fresh = load_dataset(str(root), data_dir=cache)
    assert calls, "a changed folder is decoded again"
    np.testing.assert_array_equal(fresh.x_train[0], changed)
    assert len(list((cache / "decoded").glob("*.npz"))) == 1, "the stale cache is removed"


def test_damaged_npz_cache_is_rebuilt(tmp_path):
    root = make_folder(tmp_path / "d")
    cache = tmp_path / "cache"
    first = load_dataset(str(root), data_dir=cache)
    (npz,) = (cache / "decoded").glob("*.npz")
    npz.write_bytes(b"not a zip")
    again = load_dataset(str(root), data_dir=cache)
    np.testing.assert_array_equal(first.x_train, again.x_train)


def test_default_data_dir_honours_env(monkeypatch, tmp_path):
    monkeypatch.setenv("ARCHDSL_DATA", str(tmp_path))
    assert default_data_dir() == tmp_path
    monkeypatch.delenv("ARCHDSL_DATA")
    assert default_data_dir() == Path.home() / ".cache" / "archdsl"


# --- archives --------------------------------------------------------------------------------

def test_archive_nested_one_level_loads_like_the_folder_and_is_unpacked_once(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "src")
    archive = make_targz(tmp_path / "pets.tar.gz", folder, "pets")
    cache = tmp_path / "cache"
    ds = load_dataset(str(archive), data_dir=cache)
    ref = load_dataset(str(folder), data_dir=tmp_path / "cache2")
    np.testing.assert_array_equal(ds.x_train, ref.x_train)
    np.testing.assert_array_equal(ds.y_test, ref.y_test)
    assert ds.class_names == ref.class_names and ds.source == str(archive)
    assert [p.name for p in (cache / "unpacked").iterdir()] == [p.name for p in (cache / "unpacked").glob("pets-*")]

    monkeypatch.setattr(tarfile, "open", lambda *a, **k: pytest.fail("a cached archive is not reopened"))
    again = load_dataset(str(archive), data_dir=cache)
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_a_killed_unpack_leaves_nothing_trusted(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "src")
    archive = make_targz(tmp_path / "pets.tgz", folder, ".")
    cache = tmp_path / "cache"
    real = tarfile.TarFile.extractall

    def interrupted(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(tarfile.TarFile, "extractall", interrupted)
    with pytest.raises(KeyboardInterrupt):
        load_dataset(str(archive), data_dir=cache)
    assert list((cache / "unpacked").iterdir()) == []
    assert not (cache / "decoded").exists() or list((cache / "decoded").iterdir()) == []

    # a half-unpacked folder of a process killed with SIGKILL: not trusted, and cleaned up
    monkeypatch.setattr(tarfile.TarFile, "extractall", real)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256(archive.read_bytes()).hexdigest()[:32]  # the cache's key: the archive's content
    partial = cache / "unpacked" / f".partial-pets-{key}-{dead}-abc"
    (partial / "train" / "ant").mkdir(parents=True)
    ds = load_dataset(str(archive), data_dir=cache)
    assert len(ds.x_train) == 12
    assert not partial.exists()


# --- errors ----------------------------------------------------------------------------------

def test_unknown_dataset_name_suggests_and_mentions_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = load_error("cifar", data_dir=tmp_path)
    assert "unknown dataset 'cifar'" in err.message
    assert "did you mean 'cifar10'?" in err.hint and "path" in err.hint
    err = load_error("mnist", data_dir=tmp_path)
    assert "did you mean" not in err.hint and "cifar10" in err.hint


def test_missing_path(tmp_path):
    err = load_error(str(tmp_path / "nope" / "data"), data_dir=tmp_path)
    assert f"'{tmp_path / 'nope' / 'data'}' does not exist" == err.message


def test_limit_must_be_positive(tmp_path):
    err = load_error("cifar10", data_dir=tmp_path, limit=0)
    assert "limit must be at least 1" in err.message


def test_file_that_is_neither_folder_nor_archive(tmp_path):
    (tmp_path / "x.txt").write_text("hello")
    err = load_error(str(tmp_path / "x.txt"), data_dir=tmp_path)
    assert "'" + str(tmp_path / "x.txt") + "' is not a folder or a .tar.gz archive" in err.message


def _case_no_test(root: Path) -> str:
    make_folder(root)
    for p in sorted((root / "test").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    (root / "test").rmdir()
    return f"'{root}' has no test/ folder"


def _case_empty_class(root: Path) -> str:
    make_folder(root)
    (root / "train" / "dog").mkdir()
    (root / "test" / "dog").mkdir()
    return f"class folder '{root / 'train' / 'dog'}' has no images"


def _case_not_an_image(root: Path) -> str:
    make_folder(root)
    (root / "train" / "bee" / "notes.txt").write_text("not a picture")
    return f"'{root / 'train' / 'bee' / 'notes.txt'}' is not an image file"


def _case_truncated_jpeg(root: Path) -> str:
    make_folder(root)
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (6, 5, 3), dtype=np.uint8)).save(buf, "JPEG")
    (root / "test" / "cat" / "zz.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    return f"'{root / 'test' / 'cat' / 'zz.jpg'}' is a corrupt or truncated image"


def _case_mixed_sizes(root: Path) -> str:
    make_folder(root)
    write_png(root / "train" / "bee" / "big.png", np.zeros((9, 7, 3), np.uint8))
    return (f"'{root / 'train' / 'bee' / 'big.png'}' is 9x7 but '{root / 'train' / 'ant' / '00.png'}' "
            "is 6x5: all images must have the same size")


def _case_mismatched_classes(root: Path) -> str:
    make_folder(root)
    write_png(root / "train" / "dog" / "0.png", pixel("train", 3, 0))
    write_png(root / "test" / "emu" / "0.png", pixel("test", 4, 0))
    return f"'{root}' has different class folders in train/ and test/ (only in train/: dog; only in test/: emu)"


def _case_stray_file(root: Path) -> str:
    make_folder(root)
    write_png(root / "train" / "loose.png", pixel("train", 0, 0))
    return f"'{root / 'train'}' holds 'loose.png' outside any class folder"


@pytest.mark.parametrize("case", [_case_no_test, _case_empty_class, _case_not_an_image, _case_truncated_jpeg,
                                  _case_mixed_sizes, _case_mismatched_classes, _case_stray_file],
                         ids=lambda f: f.__name__[6:])
def test_bad_folder_names_the_offender(tmp_path, case):
    root = tmp_path / "data"
    expected = case(root)
    err = load_error(str(root), data_dir=tmp_path / "cache")
    assert expected in err.message


def test_bad_image_in_an_archive_is_named_by_archive_and_member(tmp_path):
    folder = make_folder(tmp_path / "src")
    (folder / "train" / "bee" / "notes.txt").write_text("not a picture")
    archive = make_targz(tmp_path / "pets.tar.gz", folder, "pets")
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert f"'{archive}:pets/train/bee/notes.txt' is not an image file" in err.message


def test_worker_processes_decode_in_file_order_and_name_a_bad_file(tmp_path):
    """In a fresh process (no TensorFlow, so workers are allowed), fed its script on stdin."""
    root = make_folder(tmp_path / "d", counts={"a": 6, "b": 6})
    script = f"""
import numpy as np
import archdsl.training.data as data
import archdsl.training.image_decode as image_decode
from archdsl.errors import DataError

image_decode.POOL_MIN_FILES, image_decode.POOL_CHUNK = 1, 4
assert image_decode.can_fork()
pooled = data.load_dataset({str(root)!r}, data_dir={str(tmp_path / "c1")!r})
image_decode.can_fork = lambda: False
serial = data.load_dataset({str(root)!r}, data_dir={str(tmp_path / "c2")!r})
assert np.array_equal(pooled.x_train, serial.x_train) and np.array_equal(pooled.x_test, serial.x_test)
image_decode.can_fork = lambda: True
open({str(root / "train" / "b" / "03.png")!r}, "wb").write(b"not a png")
try:
    data.load_dataset({str(root)!r}, data_dir={str(tmp_path / "c1")!r})
except DataError as e:
    print(e.message)
"""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([sys.executable, "-"], input=script, capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"'{root / 'train' / 'b' / '03.png'}' is not an image file (PNG or JPEG)"


def test_no_worker_processes_beside_tensorflow(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow", sys)
    assert not image_decode.can_fork()


def test_truncated_archive_is_named(tmp_path):
    folder = make_folder(tmp_path / "src", counts={"a": 30, "b": 30})
    good = make_targz(tmp_path / "good.tar.gz", folder, "d")
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    err = load_error(str(bad), data_dir=tmp_path / "cache")
    assert f"'{bad}' is truncated or not a valid .tar.gz" in err.message
    assert list((tmp_path / "cache" / "unpacked").iterdir()) == []


def test_archive_without_train_and_test_is_refused(tmp_path):
    (tmp_path / "src" / "stuff").mkdir(parents=True)
    archive = make_targz(tmp_path / "x.tar.gz", tmp_path / "src", ".")
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert f"'{archive}' has no train/ and test/ folder" in err.message


@pytest.mark.parametrize("member", ["link", "../evil.png"])
def test_archive_escaping_its_folder_is_refused(tmp_path, member):
    folder = make_folder(tmp_path / "src")
    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="d")
        info = tarfile.TarInfo(member if member != "link" else "d/train/ant/link.png")
        if member == "link":
            info.type, info.linkname = tarfile.SYMTYPE, "../../../../../etc/passwd"
            tar.addfile(info)
        else:
            payload = (folder / "train" / "ant" / "00.png").read_bytes()
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    err = load_error(str(archive), data_dir=tmp_path / "cache")
    assert f"'{archive}' has an unsafe member" in err.message
    assert not (tmp_path / "cache" / "evil.png").exists() and not (tmp_path / "evil.png").exists()


# --- fitting a spec ---------------------------------------------------------------------------

def _tiny(classes=("a", "b")) -> Dataset:
    x = np.zeros((4, 32, 32, 3), np.uint8)
    y = np.array([0, 1, 0, 1])
    return Dataset(x, y, x, y, classes, "tiny")


def test_check_fits_accepts_matching_and_names_both_shapes():
    check_fits(_tiny(), (32, 32, 3), 2)
    check_fits(_tiny(), (32, 32, 3), None)
    with pytest.raises(DataError) as info:
        check_fits(_tiny(), (28, 28, 1), 2)
    assert "the spec's input is 28x28x1 but the images of 'tiny' are 32x32x3" == info.value.message
    assert "input 32x32x3" in info.value.hint
    with pytest.raises(DataError) as info:
        check_fits(_tiny(), (32, 32, 3), 10)
    assert "the spec has 10 classes but 'tiny' has 2 (a, b)" == info.value.message
    assert "classes 2" in info.value.hint


# --- built-in cifar10 ---------------------------------------------------------------------------

@pytest.mark.tf
def test_cifar10_download_failure_says_to_use_a_local_path(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure on https://www.cs.toronto.edu/...: None -- [Errno -3] "
                        "Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    err = load_error("cifar10", data_dir=tmp_path)
    assert err.message.startswith("cannot download cifar10")
    assert "name resolution" in err.message
    assert "--data PATH" in err.hint


@pytest.mark.tf
def test_cifar10_is_read_from_keras_download_into_our_data_dir_and_cached(tmp_path, monkeypatch):
    import pickle

    import keras

    rng = np.random.default_rng(0)
    batches = {}
    for name, n in [(f"data_batch_{i}", 20) for i in range(1, 6)] + [("test_batch", 20)]:
        batches[name] = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": [int(v) for v in rng.permutation(np.arange(n) % 10)]}
    archive = tmp_path / "downloads" / "cifar-10-python.tar.gz"
    archive.parent.mkdir()
    with tarfile.open(archive, "w:gz") as tar:
        for name, batch in batches.items():
            payload = pickle.dumps(batch, protocol=4)  # py2 wrote bytes natively too
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))

    seen = {}

    def fake_get_file(**kwargs):
        seen.update(kwargs)
        return str(archive)

    monkeypatch.setattr(keras.utils, "get_file", fake_get_file)
    ds = load_dataset("cifar10", data_dir=tmp_path)
    assert seen["cache_dir"] == str(tmp_path) and seen["file_hash"] == data.CIFAR10_SHA256
    assert ds.x_train.shape == (100, 32, 32, 3) and ds.y_train.shape == (100,)
    assert ds.x_test.shape == (20, 32, 32, 3) and ds.class_names == CIFAR_CLASSES
    # channels-last, and the stratified order is a permutation of keras' order
    first = batches["data_batch_1"]
    raw = first[b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    hits = [i for i, img in enumerate(ds.x_train) if np.array_equal(img, raw)]
    assert len(hits) == 1 and ds.y_train[hits[0]] == first[b"labels"][0]

    monkeypatch.setattr(keras.utils, "get_file", lambda **k: pytest.fail("cifar10 is cached"))
    again = load_dataset("cifar10", data_dir=tmp_path)
    np.testing.assert_array_equal(again.x_train, ds.x_train)


# --- no TensorFlow at import, and the real shared archive -------------------------------------

def test_importing_data_does_not_import_tensorflow():
    code = "import sys, archdsl.training.data; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    subprocess.run([sys.executable, "-c", code], check=True, env=env)


@pytest.fixture(scope="session")
def shared_subset(tmp_path_factory, cifar_archive):
    """A small .tar.gz cut from the shared archive (conftest's `cifar_archive`) (20 train, 5 test images per class), its
    members' bytes, and how many images per split and class the full archive holds.

    Decoding all 60,000 images takes 30-60 s on this machine (most of it unpacking), too slow
    for every test run; `pytest -m slow` also loads the whole archive.
    """
    tmp = tmp_path_factory.mktemp("cifar-subset")
    counts: dict[tuple[str, str], int] = {}
    kept: dict[str, bytes] = {}
    subset = tmp / "cifar10-subset.tar.gz"
    with tarfile.open(cifar_archive, "r|gz") as src, tarfile.open(subset, "w:gz") as dst:
        for member in src:
            parts = member.name.split("/")
            if not member.isfile() or len(parts) != 4:
                continue
            key = (parts[1], parts[2])
            counts[key] = counts.get(key, 0) + 1
            if counts[key] <= (20 if parts[1] == "train" else 5):
                payload = src.extractfile(member).read()
                kept[member.name] = payload
                dst.addfile(member, io.BytesIO(payload))
    return subset, kept, counts


def test_shared_cifar10_archive(shared_subset, tmp_path):
    subset, kept, counts = shared_subset
    assert {cls for _, cls in counts} == set(CIFAR_CLASSES)
    assert all(n == (5000 if split == "train" else 1000) for (split, _), n in counts.items())

    ds = load_dataset(str(subset), data_dir=tmp_path)
    assert ds.x_train.shape == (200, 32, 32, 3) and ds.x_train.dtype == np.uint8
    assert ds.x_test.shape == (50, 32, 32, 3)
    assert ds.class_names == CIFAR_CLASSES
    assert ds.y_train[:10].tolist() == list(range(10))
    assert np.bincount(ds.y_test).tolist() == [5] * 10
    # images are decoded as PIL decodes them: airplane's first file first, truck's second file at 19
    for index, name in ((0, "train/airplane/0000.jpg"), (19, "train/truck/0001.jpg")):
        with Image.open(io.BytesIO(kept[f"cifar10/{name}"])) as im:
            np.testing.assert_array_equal(ds.x_train[index], np.asarray(im))


@pytest.mark.slow
def test_shared_cifar10_archive_in_full(cifar_archive, data_cache):
    ds = load_dataset(str(cifar_archive), data_dir=data_cache)
    assert ds.x_train.shape == (50000, 32, 32, 3) and ds.x_test.shape == (10000, 32, 32, 3)
    assert ds.class_names == CIFAR_CLASSES
    assert np.bincount(ds.y_train).tolist() == [5000] * 10
    assert np.bincount(ds.y_train[:100]).tolist() == [10] * 10
    started = time.perf_counter()
    small = load_dataset(str(cifar_archive), data_dir=data_cache, limit=1000)
    assert time.perf_counter() - started < 10, "the second load reads the cache"
    np.testing.assert_array_equal(small.x_train, ds.x_train[:1000])


def test_one_class_is_no_classifier(tmp_path):
    """Softmax over one class is always 1: training 'reaches' 100 % and learns nothing. The spec's hint
    `classes 1` would lead there, so one class is refused before any spec is compared."""
    dataset = load_dataset(make_folder(tmp_path / "one", {"cat": 3}))
    with pytest.raises(DataError) as info:
        check_fits(dataset, (6, 5, 3), 1)
    assert "needs at least 2" in info.value.message and "classes 1" not in (info.value.hint or "")


def test_a_trained_models_mismatch_points_at_the_data_not_the_spec(tmp_path):
    dataset = load_dataset(make_folder(tmp_path / "three"))
    with pytest.raises(DataError) as info:
        check_fits(dataset, (32, 32, 3), 3, subject="model")
    assert info.value.message.startswith("the model's input is 32x32x3") and "--data" in info.value.hint
    with pytest.raises(DataError) as info:
        check_fits(dataset, (6, 5, 3), 10, subject="model")
    assert "the model has 10 classes" in info.value.message and "in the spec" not in info.value.hint
