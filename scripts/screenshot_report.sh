#!/usr/bin/env bash
# Look at an archdsl HTML report as a reader would: render it and screenshot it with headless Chromium.
#
#   scripts/screenshot_report.sh [SPEC [RUN_DIR|auto|none [OUT.png]]]
#
# Defaults: specs/best.arch; `auto`, the newest run of the spec under runs/<spec>/ that has a history.csv,
# if there is one; docs/img/report_best.png (replaced if present: it is the README's picture).
# WIDTH and HEIGHT (default 1280x2400) set the browser window, i.e. the picture.
# Needs Chromium (Debian: apt-get install -y chromium). The browser runs with a throw-away profile and
# no network features; the report itself loads nothing (no script, no external asset).
set -euo pipefail
cd "$(dirname "$0")/.."

spec=${1:-specs/best.arch}
run=${2:-auto}
out=${3:-docs/img/report_best.png}
width=${WIDTH:-1280}
height=${HEIGHT:-2400}

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "error: Chromium is not installed; install it with: apt-get install -y chromium" >&2
    exit 2
fi

if [ "$run" = auto ]; then
    stem=$(basename "$spec" .arch)
    run=
    for d in runs/"$stem"/*/; do  # timestamped names: the glob's order is their age
        if [ -f "$d/history.csv" ]; then run=${d%/}; fi
    done
elif [ "$run" = none ]; then
    run=
fi
if [ -n "$run" ]; then echo "run: $run"; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python -m archdsl.cli report "$spec" ${run:+"$run"} -o "$tmp/report.html"

"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --force-device-scale-factor=1 --user-data-dir="$tmp/profile" \
    --screenshot="$tmp/shot.png" --window-size="$width,$height" "file://$tmp/report.html" \
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
