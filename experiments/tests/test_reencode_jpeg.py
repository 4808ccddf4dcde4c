"""experiments/scripts/reencode_jpeg.py: the experiment copy of a dataset archive (experiments/README.md, target 1).

Checked against PIL itself: each written file is the JPEG PIL makes of the archive's image at the
asked quality, the folder layout is what `--data` reads, the printed PSNR is the one computed here
from the pixels, nothing but <root>/<split>/<class>/<file> is written, and an existing folder is
refused untouched.
"""
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def script(load_script):
    return load_script("reencode_jpeg")


def _jpeg(seed: int, quality: int = 90) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (8, 8, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _archive(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("d/train/cat/link.jpg")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    return path


def test_each_image_is_reencoded_at_the_quality_and_the_psnr_is_the_pixels(script, tmp_path, capsys):
    images = {"d/train/cat/0.jpg": _jpeg(0), "d/train/dog/0.jpg": _jpeg(1), "d/test/cat/0.jpg": _jpeg(2)}
    archive = _archive(tmp_path / "a.tar.gz", {**images, "d/README": b"text", "d/../escape.jpg": _jpeg(3)})
    out = tmp_path / "copy"
    assert script.main([str(archive), str(out), "--quality", "40"]) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["test/cat/0.jpg", "train/cat/0.jpg", "train/dog/0.jpg"]
    assert not (tmp_path / "escape.jpg").exists()
    errors, count = 0.0, 0
    for name, data in images.items():
        before = Image.open(io.BytesIO(data)).convert("RGB")
        expected = io.BytesIO()
        before.save(expected, "JPEG", quality=40, subsampling=2)
        got = (out / name.split("/", 1)[1]).read_bytes()
        assert got == expected.getvalue()
        diff = np.asarray(before, float) - np.asarray(Image.open(io.BytesIO(got)).convert("RGB"), float)
        errors, count = errors + (diff ** 2).sum(), count + diff.size
    psnr = 10 * np.log10(255 ** 2 / (errors / count))
    printed = capsys.readouterr().out.strip()
    assert printed == f"3 images written to {out}; PSNR against the archive's images {psnr:.2f} dB"


def test_an_existing_folder_is_refused_untouched(script, tmp_path):
    archive = _archive(tmp_path / "a.tar.gz", {"d/train/cat/0.jpg": _jpeg(0)})
    out = tmp_path / "copy"
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    with pytest.raises(SystemExit, match="exists"):
        script.main([str(archive), str(out), "--quality", "50"])
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
