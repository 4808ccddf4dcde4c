"""An image folder's layout, checked and listed: PATH/train/<class>/<images>, PATH/test/<class>/<images>.

    root = image_folder.root(path, str(path))       # PATH, or its only sub-folder, holding train/ and test/
    files = image_folder.list_images(root, str)     # ("train/cat/1.png", "cat", size, mtime_ns), ...

train/ and test/ hold the same class folders (the folder names are the labels), each with at
least one file and no sub-folder; names starting with a dot are skipped. Anything else is a
DataError naming the file or folder (`show` turns a path into what the message prints: for an
archive, archive:member; names are escaped by fileio.shown_path, so none can drive the terminal or
break a message's line). Decoding the files and caching the arrays is `data`'s job.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from archdsl.errors import DataError
from archdsl.fileio import shown_path

SPLITS = ("train", "test")
LAYOUT_HINT = "an image folder needs PATH/train/<class>/<images> and PATH/test/<class>/<images>"


def root(path: Path, shown: str) -> Path:
    """The folder holding train/ and test/: `path` itself, or its only sub-folder."""
    if (path / "train").is_dir() and (path / "test").is_dir():
        return path
    subdirs = [p for p in path.iterdir() if p.is_dir() and not _hidden(p.name) and p.name != "__MACOSX"]
    if len(subdirs) == 1 and (subdirs[0] / "train").is_dir() and (subdirs[0] / "test").is_dir():
        return subdirs[0]
    missing = " and ".join(f"{s}/" for s in SPLITS if not (path / s).is_dir())
    raise DataError(f"'{shown}' has no {missing} folder", hint=LAYOUT_HINT)


def list_images(root: Path, show: Callable[[Path], str]) -> list[tuple[str, str, int, int]]:
    """(path relative to root, class, size, mtime_ns) of every image, by split, class, file name.

    `show` turns a path into what messages print (for an archive: archive:member).
    """
    classes = {split: _class_folders(root / split, show) for split in SPLITS}
    if classes["train"] != classes["test"]:
        only_train = sorted(set(classes["train"]) - set(classes["test"]))
        only_test = sorted(set(classes["test"]) - set(classes["train"]))
        parts = [f"only in train/: {shown_path(', '.join(only_train))}" if only_train else "",
                 f"only in test/: {shown_path(', '.join(only_test))}" if only_test else ""]
        raise DataError(f"'{show(root)}' has different class folders in train/ and test/ "
                        f"({'; '.join(p for p in parts if p)})",
                        hint="give train/ and test/ the same class folders (the names are the labels)")
    files = []
    for split in SPLITS:
        for cls in classes[split]:
            folder = root / split / cls
            entries = sorted((e for e in os.scandir(folder) if not _hidden(e.name)), key=lambda e: e.name)
            for e in entries:
                if not e.is_file():
                    raise DataError(f"'{show(folder)}' holds '{shown_path(e.name)}', which is not an image file",
                                    hint="put the images directly in the class folder, with no sub-folders")
                st = e.stat()
                files.append((f"{split}/{cls}/{e.name}", cls, st.st_size, st.st_mtime_ns))
            if not entries:
                raise DataError(f"class folder '{show(folder)}' has no images",
                                hint="add images to it, or remove the class from train/ and test/")
    return files


def _class_folders(split_dir: Path, show: Callable[[Path], str]) -> list[str]:
    entries = sorted(e for e in os.listdir(split_dir) if not _hidden(e))
    strays = [e for e in entries if not (split_dir / e).is_dir()]
    if strays:
        raise DataError(f"'{show(split_dir)}' holds '{shown_path(strays[0])}' outside any class folder",
                        hint=f"put each image in {split_dir.name}/<class>/; the folder names are the labels")
    if not entries:
        raise DataError(f"'{show(split_dir)}' has no class folders", hint=LAYOUT_HINT)
    return entries


def _hidden(name: str) -> bool:
    return name.startswith(".")
