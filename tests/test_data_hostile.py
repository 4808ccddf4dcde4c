"""Adversarial data (issue 27): what an image folder or a .tar.gz of one can hold besides small images.

- files in a format other than PNG or JPEG, whatever their name (an EPS named e.jpg would make PIL
  look for Ghostscript; TIFF, BMP, GIF, WebP would train): refused, naming the file, never decoded;
- an archive member with an absolute path: refused as unsafe like `../`, naming the member (tarfile's
  data filter alone would strip the `/` and unpack it); control characters in names are escaped;
"""
from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import EpsImagePlugin, Image

from test_data import load_error, make_folder, make_targz, pixel

from archdsl.training.data import load_dataset

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
