#!/usr/bin/env bash
# Re-make docs/report-screenshot.png: run the demo, render its HTML report in headless
# Chromium (Debian's `chromium` package: apt-get install chromium), save a PNG.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v chromium >/dev/null || { echo "needs chromium: apt-get install chromium" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cargo run --release --quiet -- demo --dir "$work/demo" >/dev/null
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --hide-scrollbars --user-data-dir="$work/profile" --window-size=1280,2000 \
  --screenshot="$PWD/docs/report-screenshot.png" "file://$work/demo/report.html" 2>/dev/null
echo "wrote docs/report-screenshot.png"
