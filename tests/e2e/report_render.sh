#!/usr/bin/env bash
# The training report in a real browser: a short MNIST run writes report.html, a resumed run
# rewrites it with every epoch, and headless Chromium renders it: the DOM it builds has each
# section and the expected SVG elements, and a screenshot is taken for a person to look at.
# Exits 77 (skipped) without Chromium or MNIST.
#   tests/e2e/report_render.sh path/to/scratchnet DATA_DIR SCREENSHOT.png
set -euo pipefail
bin=$1 data=$2 screenshot=$3
browser=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$browser" ]; then
  echo "SKIP: no chromium (scripts/install-deps.sh installs it)"
  exit 77
fi
if [ ! -f "$data/mnist/train-images-idx3-ubyte" ]; then
  echo "SKIP: MNIST is not in $data/mnist (scripts/fetch-data.sh mnist)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL $*"; exit 1; }
passed=0
check() {  # check NAME WANT GOT
  [ "$2" = "$3" ] || fail "$1: expected $2, got $3"
  passed=$((passed + 1))
}

run=$tmp/run
"$bin" train --model basic --dataset mnist --data-dir "$data" --limit-train 2000 --limit-test 500 \
  --epochs 2 --seed 1 --quiet --out "$run" >"$tmp/train.log"
grep -q "report written to $run/report.html" "$tmp/train.log" || fail "train did not name the report"
[ -s "$run/report.html" ] || fail "no report.html after 2 epochs"
check "points per chart line after 2 epochs" 2 \
  "$(grep -o 'points="[^"]*"' "$run/report.html" | head -1 | cut -d'"' -f2 | wc -w)"
"$bin" train --resume "$run" --epochs 3 --data-dir "$data" --quiet >>"$tmp/train.log"
ls "$run"/*.tmp 2>/dev/null && fail "temporary files left in the run directory"

chrome() {
  timeout 120 "$browser" --headless=new --no-sandbox --disable-gpu --no-first-run \
    --user-data-dir="$tmp/profile" --window-size=1200,2400 "$@" "file://$run/report.html" \
    2>>"$tmp/chromium.log"
}
chrome --dump-dom >"$tmp/dom.html" || { cat "$tmp/chromium.log"; fail "chromium --dump-dom"; }
dom=$tmp/dom.html
count() { { grep -o "$1" "$dom" || true; } | wc -l; }

for id in curves confusion mistakes filters recipe; do
  check "section $id" 1 "$(count "<section id=\"$id\">")"
done
check "charts" 3 "$(count '<svg class="chart"')"
# The resumed run's report has all three epochs: train and test lines for loss and accuracy,
# one for the lr, each with a point per epoch.
check "chart lines" 5 "$(count '<polyline class="series"')"
while read -r points; do
  check "points per line" 3 "$(printf '%s' "$points" | wc -w)"
done < <(grep -o 'points="[^"]*"' "$dom" | cut -d'"' -f2)
check "epoch rows" 3 "$(sed -n '/<tbody>/,/<\/tbody>/p' "$dom" | grep -c '<tr>')"
check "heat-map cells (10 x 10)" 100 "$(count '<rect class="cell"')"
cells=$(grep -o '<title>true [0-9], predicted [0-9]: [0-9]*</title>' "$dom" |
  awk -F'[:<]' '{ n += $3 } END { print n }')
check "confusion counts add up to the test images" 500 "$cells"
mistakes=$(count '<figure class="mistake">')
[ "$mistakes" -ge 1 ] && [ "$mistakes" -le 24 ] || fail "mistakes: $mistakes figures"
check "mistake images are embedded PNGs" "$mistakes" "$(count '<img src="data:image/png;base64,')"
check "filters (basic's first Conv2d has 32)" 32 "$(count '<g class="filter">')"
check "nothing loaded from elsewhere" 0 "$(grep -Eoc '(src|href)="(https?:)?//' "$dom" || true)"
check "no script" 0 "$(count '<script')"

chrome --screenshot="$screenshot" || { cat "$tmp/chromium.log"; fail "chromium --screenshot"; }
check "screenshot is a PNG" "89504e47" "$(head -c 4 "$screenshot" | od -An -tx1 | tr -d ' \n')"
[ "$(stat -c %s "$screenshot")" -gt 50000 ] || fail "screenshot $screenshot is nearly empty"
echo "report rendered by $("$browser" --version 2>/dev/null | head -1); screenshot $screenshot"
echo "$passed passed, 0 failed"
