"""Write a copy of an image-folder archive with every image JPEG-encoded once more, at a given quality.

An experiment tool for experiments/README.md (target 1): our CIFAR-10 is a JPEG (quality 75, 4:2:0)
re-encoding of the original, which we cannot download here. Training the same spec on a copy
degraded one step further shows how much this data's accuracy depends on the detail JPEG drops.

    python experiments/scripts/reencode_jpeg.py ../shared/data/cifar10-jpg.tar.gz /root/archdsl-data/cifar10-q50 --quality 50
    archdsl train experiments/specs/X.arch --data /root/archdsl-data/cifar10-q50 ...

The output is a folder (train/<class>/*.jpg, test/<class>/*.jpg) that `--data` reads; it must
not exist yet. Prints the PSNR of the new images against the archive's.
"""
from __future__ import annotations

import argparse
import io
import sys
import tarfile
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("archive", type=Path, help="a .tar.gz of <root>/{train,test}/<class>/<image>")
    ap.add_argument("out", type=Path, help="the folder to write (must not exist)")
    ap.add_argument("--quality", type=int, required=True, help="JPEG quality, 1-95")
    ap.add_argument("--subsampling", type=int, default=2, help="PIL's chroma subsampling: 0 4:4:4, 2 4:2:0")
    args = ap.parse_args(argv)
    if args.out.exists():
        sys.exit(f"error: '{args.out}' exists; choose a new folder (nothing is overwritten)")
    squared_error, pixels, images = 0.0, 0, 0
    with tarfile.open(args.archive) as tar:
        for member in tar:
            parts = PurePosixPath(member.name).parts
            # only <root>/<split>/<class>/<file>: no absolute paths, no '..', no links
            if not member.isfile() or len(parts) != 4 or ".." in parts or parts[1] not in ("train", "test"):
                continue
            with Image.open(io.BytesIO(tar.extractfile(member).read())) as im:
                before = im.convert("RGB")
            buf = io.BytesIO()
            before.save(buf, "JPEG", quality=args.quality, subsampling=args.subsampling)
            after = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
            diff = np.asarray(before, np.float64) - np.asarray(after, np.float64)
            squared_error += float((diff ** 2).sum())
            pixels += diff.size
            target = args.out.joinpath(*parts[1:])
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(buf.getvalue())
            images += 1
    psnr = 10 * np.log10(255.0 ** 2 / (squared_error / pixels))
    print(f"{images:,} images written to {args.out}; PSNR against the archive's images {psnr:.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
