#!/usr/bin/env bash
# Look at examples/notebook.ipynb as a Jupyter reader would: execute it, convert it to HTML (JupyterLab's look)
# and screenshot the page with headless Chromium.
#
#   scripts/screenshot_notebook.sh [OUT.png]
#
# Default: docs/img/notebook.png (replaced if present: docs/jupyter.md shows it). WIDTH and HEIGHT (default
# 1100x2250) set the browser window, i.e. the picture. The notebook trains on the CIFAR-10 archive
# $ARCHDSL_CIFAR10_ARCHIVE (else ../shared/data/cifar10-jpg.tar.gz, else the built-in cifar10), in a
# throw-away folder. Needs the `notebook` extra, nbconvert (pip install nbconvert) and Chromium (Debian:
# apt-get install -y chromium); the page loads nothing from the network once written.
set -euo pipefail
cd "$(dirname "$0")/.."

out=${1:-docs/img/notebook.png}
width=${WIDTH:-1100}
height=${HEIGHT:-2250}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "error: Chromium is not installed; install it with: apt-get install -y chromium" >&2
    exit 2
fi
if [ -z "${ARCHDSL_CIFAR10_ARCHIVE:-}" ] && [ -f ../shared/data/cifar10-jpg.tar.gz ]; then
    export ARCHDSL_CIFAR10_ARCHIVE="$(cd ../shared/data && pwd)/cifar10-jpg.tar.gz"
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp examples/notebook.ipynb "$tmp/notebook.ipynb"
# executed where it lies (its spec file, runs/ and report land in $tmp); the HTML embeds every output
python -m nbconvert --to html --execute --ExecutePreprocessor.timeout=900 --output notebook.html \
    "$tmp/notebook.ipynb" >"$tmp/nbconvert.log" 2>&1 || { cat "$tmp/nbconvert.log" >&2; exit 1; }

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --force-device-scale-factor=1 --user-data-dir="$tmp/profile" \
    --screenshot="$tmp/shot.png" --window-size="$width,$height" "file://$tmp/notebook.html" \
    >"$tmp/chromium.log" 2>&1 || { cat "$tmp/chromium.log" >&2; exit 1; }

# a palette PNG: a page of flat colours loses nothing visible and shrinks 3-4 times
python - "$tmp/shot.png" <<'PY'
import sys
from PIL import Image
path = sys.argv[1]
Image.open(path).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
PY
mkdir -p "$(dirname "$out")"
mv "$tmp/shot.png" "$out"
echo "wrote $out ($(du -k "$out" | cut -f1) KB)"
