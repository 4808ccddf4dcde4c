"""Datasets as uint8 arrays: the built-in CIFAR-10, an image folder, or a .tar.gz of one.

    load_dataset("cifar10")                  # keras download, cached under the data dir
    load_dataset("data/pets")                # pets/train/<class>/*.png, pets/test/<class>/*
    load_dataset("cifar10-jpg.tar.gz")       # unpacked once, then as a folder

Everything is decoded once and cached as an `.npz` under the data dir
(`$ARCHDSL_DATA`, else `~/.cache/archdsl`):

    <data dir>/downloads/cifar-10-python.tar.gz          keras' download of the built-in cifar10
    <data dir>/archives/<archive>-<digest16>.json         an archive's sha256 (digest16: of its path)
    <data dir>/unpacked/<archive>-<key>/...              an archive, unpacked (key: its sha256's first 32)
    <data dir>/decoded/cifar10-keras-v1.npz              the decoded arrays of the built-in cifar10,
    <data dir>/decoded/<archive stem>-<key>-v1.npz       of an archive,
    <data dir>/decoded/<folder>-<digest8>-<key>-v1.npz   of a folder (digest8: of its path)
    <data dir>/decoded/...-<key>-first<N>-<M>-v1.npz      the first N train, M test images only

An archive is unpacked within bounds (of its size and member count) and its entries are keyed
by its content, its sha256 (archives.py says how). The hash comes with the dataset
(`Dataset.archive_sha256`), so a run can record what it trained on.

A first load shows its progress on stderr (progress.py): hashing and unpacking an archive, reading
the headers, decoding, and one line for the cache entry written; a cached load shows nothing.

Every cache entry is written under a temporary name and renamed into place, so a process
killed half-way never leaves an entry that a later run trusts. A folder's `.npz` is keyed
by the names, sizes and modification times of all its files: edit the folder and it is
decoded again (the stale `.npz` is deleted).

Order, and what `limit` takes. Both splits are stored in *stratified order*: the classes
interleaved in proportion to their size, each class keeping its file order (sorted by
file name; the built-in cifar10 keeps keras' order). So `limit=N` takes the first N images
of that order, a class-balanced sample (N=100 on 10 balanced classes gives 10 per class),
and the same N always gives the same images. No random numbers are involved. Only the
images a limit selects are decoded (and cached apart, until the whole splits are); the
headers of all are read first, so a limit refuses what the whole data would (images of
another size than the first, or larger than image_decode.max_image_pixels()) and gives the
same channels. A damaged image a limit leaves out is not noticed.

Channels. A grayscale image (mode L, 1, I, I;16, F, LA) decodes to one channel, anything
else (RGB, RGBA, P, CMYK, ...) to RGB; alpha is dropped. If a dataset mixes the two, its
grayscale images are repeated to three channels, so a dataset is C=1 only if every image
in it is grayscale.

This module needs numpy and Pillow only. TensorFlow is imported only to download cifar10.
"""
from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import archives, image_decode, image_folder, progress
from .archives import ARCHIVE_SUFFIXES, digest, make_dir
from archdsl.errors import DataError, did_you_mean
from archdsl.fileio import one_line, shown_path, umask

CACHE_VERSION = 1  # bump when the .npz layout or the decoding changes

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
BUILTIN = ("cifar10",)


@dataclass(frozen=True, eq=False, repr=False)
class Dataset:
    x_train: np.ndarray  # uint8 (N, H, W, C)
    y_train: np.ndarray  # int64 (N,) labels 0..K-1
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    source: str          # what was loaded, for messages and run metadata
    archive_sha256: str | None = None  # of the archive the images came from (None for a folder)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(d) for d in self.x_train.shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        return (f"Dataset({self.source!r}, train={len(self.x_train)}, test={len(self.x_test)}, "
                f"images={h}x{w}x{c}, classes={self.num_classes})")


def default_data_dir() -> Path:
    """Where datasets are downloaded, unpacked and cached: $ARCHDSL_DATA or ~/.cache/archdsl."""
    env = os.environ.get("ARCHDSL_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "archdsl"


def load_dataset(name_or_path: str | os.PathLike, data_dir: str | os.PathLike | None = None,
                 limit: int | None = None, test_limit: int | None = None) -> Dataset:
    """Load a built-in dataset by name, or an image folder / .tar.gz of one by path.

    A built-in name wins over a folder of the same name in the working directory; write
    `./cifar10` for the folder. `limit` / `test_limit` keep the first N images of the
    stratified order (see the module docstring); None keeps all of them.
    """
    for what, n in (("limit", limit), ("test_limit", test_limit)):
        if n is not None and n < 1:
            raise DataError(f"{what} must be at least 1, got {n}",
                            hint="leave it out to use the whole split")
    name_or_path = os.fspath(name_or_path)
    cache = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    if name_or_path in BUILTIN:
        arrays, source, sha256 = _load_cifar10(cache), "cifar10 (keras.datasets.cifar10)", CIFAR10_SHA256
    else:
        path = Path(name_or_path).expanduser()
        if not path.exists():
            raise _missing(name_or_path)
        path = path.resolve()
        if path.is_dir():
            arrays, sha256 = _load_folder(path, cache, limit, test_limit), None
        elif path.name.lower().endswith(ARCHIVE_SUFFIXES):
            arrays, sha256 = _load_archive(path, cache, limit, test_limit)
        else:
            raise DataError(f"'{name_or_path}' is not a folder or a .tar.gz archive",
                            hint=f"{image_folder.LAYOUT_HINT}; a .tar.gz of such a folder also works")
        source = str(path)
    return Dataset(x_train=_first(arrays["x_train"], limit), y_train=_first(arrays["y_train"], limit),
                   x_test=_first(arrays["x_test"], test_limit), y_test=_first(arrays["y_test"], test_limit),
                   class_names=tuple(str(c) for c in arrays["class_names"]), source=source,
                   archive_sha256=sha256)


def check_fits(dataset: Dataset, input_shape: tuple[int, int, int], classes: int | None,
               subject: str = "spec") -> None:
    """Raise a DataError if the spec's (or a trained model's) input shape or classes do not match the data."""
    h, w, c = dataset.image_shape
    if dataset.num_classes < 2:  # softmax over one class is always 1: nothing to learn or measure
        raise DataError(f"'{dataset.source}' has {dataset.num_classes} class ({', '.join(dataset.class_names)}); "
                        "a classifier needs at least 2", hint="add a folder of images for each other class under "
                        "train/ and test/")
    names = ", ".join(dataset.class_names[:12]) + (", ..." if dataset.num_classes > 12 else "")
    if tuple(input_shape) != (h, w, c):
        want = "x".join(str(d) for d in input_shape)
        hint = (f"write `input {h}x{w}x{c}` in the spec, or use data of {want} images" if subject == "spec"
                else f"evaluate it on data of {want} images (--data)")
        raise DataError(f"the {subject}'s input is {want} but the images of '{dataset.source}' are {h}x{w}x{c}",
                        hint=hint)
    if classes is not None and classes != dataset.num_classes:
        hint = (f"write `classes {dataset.num_classes}` in the spec" if subject == "spec"
                else f"evaluate it on data of {classes} classes (--data)")
        raise DataError(f"the {subject} has {classes} classes but '{dataset.source}' has "
                        f"{dataset.num_classes} ({names})", hint=hint)


def stratified_order(labels: np.ndarray) -> np.ndarray:
    """Indices that interleave the classes in proportion to their size, keeping each class's order.

    The i-th image of a class of n images sorts at (i + 0.5) / n, ties going to the lower
    label, so every prefix is as close to the class proportions as a prefix can be.
    """
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    counts = np.bincount(labels)
    by_class = np.argsort(labels, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(len(labels), dtype=np.int64)
    rank[by_class] = np.arange(len(labels)) - starts[labels[by_class]]
    key = (rank + 0.5) / counts[labels]
    return np.lexsort((labels, key))


# --- built-in cifar10 ---------------------------------------------------------------------

def _load_cifar10(cache: Path) -> dict[str, np.ndarray]:
    npz = cache / "decoded" / f"cifar10-keras-v{CACHE_VERSION}.npz"
    return _cached(npz, lambda: _parse_cifar10(_download_cifar10(cache)))


def _download_cifar10(cache: Path) -> Path:
    """The cifar10 archive, downloaded by keras into `<cache>/downloads` unless already there."""
    try:
        import keras  # heavy: only when cifar10 is not yet cached

        return Path(keras.utils.get_file(fname="cifar-10-python.tar.gz", origin=CIFAR10_URL,
                                         file_hash=CIFAR10_SHA256, cache_dir=str(cache),
                                         cache_subdir="downloads"))
    except Exception as e:
        raise DataError(f"cannot download cifar10 from {CIFAR10_URL}: {one_line(e)}",
                        hint="check the network, or pass a local copy with `--data PATH` "
                             "(an image folder or a .tar.gz of one)") from e


class _NumpyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and plain containers only: a cifar batch is nothing more."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"),
               ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name}")
        return super().find_class(module.replace("numpy.core.", "numpy._core."), name)


def _parse_cifar10(archive: Path) -> dict[str, np.ndarray]:
    def batch(tar: tarfile.TarFile, name: str) -> tuple[np.ndarray, np.ndarray]:
        f = tar.extractfile(f"cifar-10-batches-py/{name}")
        d = _NumpyUnpickler(f, encoding="bytes").load()
        x = np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return x, np.asarray(d[b"labels"], dtype=np.int64).reshape(-1)

    try:
        with tarfile.open(archive) as tar:
            train = [batch(tar, f"data_batch_{i}") for i in range(1, 6)]
            x_test, y_test = batch(tar, "test_batch")
    except (tarfile.TarError, EOFError, zlib.error, OSError, KeyError, pickle.UnpicklingError) as e:
        raise DataError(f"'{archive}' is not a readable cifar10 archive: {one_line(e)}",
                        hint="delete it to download it again, or pass `--data PATH`") from e
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return _ordered(x_train, y_train, x_test, y_test, CIFAR10_CLASSES)


# --- archives --------------------------------------------------------------------------------

def _load_archive(archive: Path, cache: Path, limit: int | None,
                  test_limit: int | None) -> tuple[dict[str, np.ndarray], str]:
    """The arrays of an archive's images, and the archive's sha256 (which keys its cache entries)."""
    sha256, identity = archives.archive_sha256(archive, cache)
    key = sha256[:32]
    stem = archives.archive_stem(archive.name)
    npz = cache / "decoded" / f"{stem}-{key}-v{CACHE_VERSION}.npz"
    arrays = _read_npz(npz)
    if arrays is None and (limit, test_limit) != (None, None):
        arrays = _read_npz(_limited(npz, limit, test_limit))
    if arrays is not None:
        return arrays, sha256
    unpacked = archives.unpacked(archive, cache / "unpacked" / f"{stem}-{key}", identity)

    def show(p: Path) -> str:
        return shown_path(f"{archive}:{p.relative_to(unpacked)}")

    try:
        root = image_folder.root(unpacked, str(archive))
        return _decode_cached(npz, root, show, image_folder.list_images(root, show), limit, test_limit), sha256
    except DataError:  # an archive refused for what it holds keeps no copy in the cache
        archives.discard(unpacked)
        raise


# --- image folders ---------------------------------------------------------------------------

def _load_folder(path: Path, cache: Path, limit: int | None, test_limit: int | None) -> dict[str, np.ndarray]:
    root = image_folder.root(path, shown_path(path))
    files = image_folder.list_images(root, shown_path)
    listing = "\n".join(f"{rel}|{size}|{mtime}" for rel, _, size, mtime in files)
    key = digest(f"{CACHE_VERSION}\n{listing}")
    prefix = f"{root.name or 'data'}-{digest(str(root))[:8]}-"
    npz = cache / "decoded" / f"{prefix}{key}-v{CACHE_VERSION}.npz"
    arrays = _decode_cached(npz, root, shown_path, files, limit, test_limit)
    for stale in npz.parent.iterdir():  # the folder's entries of other contents
        if stale.name.startswith(prefix) and stale.suffix == ".npz" and not stale.name.startswith(f"{prefix}{key}-"):
            stale.unlink(missing_ok=True)
    return arrays


def _decode_cached(npz: Path, root: Path, show: Callable[[Path], str], files: list,
                   limit: int | None, test_limit: int | None) -> dict[str, np.ndarray]:
    """The arrays of `npz` (the whole splits), or of its limited twin when the limits cut a split:
    read if cached, else decoded (only the images the limits select) and cached. A whole
    decode supersedes the limited ones, which are then deleted."""
    arrays = _read_npz(npz)
    n_train = sum(rel.startswith("train/") for rel, _, _, _ in files)
    cut = (limit or n_train) < n_train or (test_limit or len(files)) < len(files) - n_train
    if arrays is None and cut:
        return _cached(_limited(npz, limit, test_limit), lambda: _decode_folder(root, show, files, limit, test_limit))
    arrays = arrays if arrays is not None else _cached(npz, lambda: _decode_folder(root, show, files))
    limited = npz.name[:-len(f"-v{CACHE_VERSION}.npz")] + "-first"  # not a glob: names may hold [ ] * ?
    for superseded in npz.parent.iterdir():
        if superseded.name.startswith(limited) and superseded.suffix == ".npz":
            superseded.unlink(missing_ok=True)
    return arrays


def _limited(npz: Path, limit: int | None, test_limit: int | None) -> Path:
    """The cache entry of the first `limit` and `test_limit` images of `npz`'s splits."""
    return npz.with_name(npz.name.replace(f"-v{CACHE_VERSION}.npz",
                                          f"-first{limit or 'all'}-{test_limit or 'all'}-v{CACHE_VERSION}.npz"))


def _decode_folder(root: Path, show: Callable[[Path], str], files: list | None = None,
                   limit: int | None = None, test_limit: int | None = None) -> dict[str, np.ndarray]:
    """The images of `files` (default: all of root's) in stratified order, the first `limit` of train/
    and `test_limit` of test/ (default: all). Every image's size and mode are read from its header
    first (a limit refuses what the whole would, and gives the same channels); only the selected
    images are decoded."""
    files = image_folder.list_images(root, show) if files is None else files
    classes = sorted({cls for _, cls, _, _ in files})
    label = {c: i for i, c in enumerate(classes)}
    y = np.array([label[cls] for _, cls, _, _ in files], dtype=np.int64)
    n_train = sum(rel.startswith("train/") for rel, _, _, _ in files)  # listed first
    rank = np.empty(len(files), dtype=np.int64)  # each file's place in its split's stratified order
    rank[stratified_order(y[:n_train])] = np.arange(n_train)
    rank[n_train + stratified_order(y[n_train:])] = np.arange(len(files) - n_train)
    in_train = np.arange(len(files)) < n_train
    keep_train, keep_test = min(limit or n_train, n_train), min(test_limit or len(files), len(files) - n_train)
    chosen = np.flatnonzero(np.where(in_train, rank < keep_train, rank < keep_test))  # in file order
    slot = rank[chosen]  # where each chosen file goes in its split
    paths = [str(root / rel) for rel, _, _, _ in files]
    h, w = image_decode.image_size(paths[0], show)
    first = (paths[0], h, w)
    gray = image_decode.read_headers(paths, show, first) if len(chosen) < len(files) else []
    images = image_decode.decode_images([paths[i] for i in chosen], show, first)
    channels = 3 if any(im.ndim == 3 for im in images) or not all(gray) else 1
    x = [np.empty((n, h, w, channels), np.uint8) for n in (keep_train, keep_test)]  # train, test
    labels = [np.empty(n, np.int64) for n in (keep_train, keep_test)]
    for i, k, im in zip(chosen, slot, images):
        if im.shape[:2] != (h, w):  # the header said otherwise: changed meanwhile
            raise DataError(f"'{show(root / files[i][0])}' is {im.shape[0]}x{im.shape[1]} but "
                            f"'{show(root / files[0][0])}' is {h}x{w}: all images must have the same size",
                            hint="resize the images to one size")
        split = 0 if in_train[i] else 1
        x[split][k] = im if im.ndim == 3 else im[..., None]
        labels[split][k] = y[i]
    return {"x_train": x[0], "y_train": labels[0], "x_test": x[1], "y_test": labels[1],
            "class_names": np.array(classes, dtype=str)}


# --- shared helpers --------------------------------------------------------------------------

def _ordered(x_train, y_train, x_test, y_test, classes) -> dict[str, np.ndarray]:
    tr, te = stratified_order(y_train), stratified_order(y_test)
    return {"x_train": np.ascontiguousarray(x_train[tr]), "y_train": y_train[tr].astype(np.int64),
            "x_test": np.ascontiguousarray(x_test[te]), "y_test": y_test[te].astype(np.int64),
            "class_names": np.array(classes, dtype=str)}


def _cached(npz: Path, build: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored in `npz`, built and stored first if it is missing or unreadable."""
    arrays = _read_npz(npz)
    if arrays is not None:
        return arrays
    arrays = build()
    make_dir(npz.parent)
    start = time.monotonic()
    fd, tmp = tempfile.mkstemp(prefix=f".partial-{npz.name}-", dir=npz.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~umask())  # mkstemp makes it private; the cache is not
        os.replace(tmp, npz)
    except OSError as e:
        raise DataError(f"cannot write the dataset cache '{npz}': {one_line(e)}",
                        hint="free some disk space, or choose another data dir with $ARCHDSL_DATA") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    progress.note(f"cached {len(arrays['x_train']) + len(arrays['x_test']):,} decoded images as {shown_path(npz)} "
                  f"({sum(a.nbytes for a in arrays.values()) / 2**20:.1f} MiB, {time.monotonic() - start:.1f} s)")
    return arrays


def _read_npz(npz: Path) -> dict[str, np.ndarray] | None:
    """The arrays stored in `npz`; None if it is missing or damaged (a damaged one is deleted)."""
    if not npz.is_file():
        return None
    try:
        with np.load(npz, allow_pickle=False) as f:
            return {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test", "class_names")}
    except Exception:  # a damaged cache is only a cache miss
        npz.unlink(missing_ok=True)
        return None


def _first(a: np.ndarray, n: int | None) -> np.ndarray:
    return a if n is None or n >= len(a) else a[:n].copy()  # copy: free the rest


def _missing(name: str) -> DataError:
    looks_like_path = os.sep in name or "/" in name or "." in name
    if looks_like_path:
        return DataError(f"'{name}' does not exist",
                         hint=f"check the path; {image_folder.LAYOUT_HINT}, or a .tar.gz of such a folder")
    guess = did_you_mean(name, BUILTIN)
    return DataError(f"unknown dataset '{name}' (and no such file or folder)",
                     hint=(f"{guess} " if guess else "") + f"built-in datasets: {', '.join(BUILTIN)}; "
                          "a path to an image folder or a .tar.gz of one is also accepted")
