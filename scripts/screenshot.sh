#!/usr/bin/env bash
# Render pages of the built book in headless Chromium and save PNG screenshots.
# Usage: scripts/screenshot.sh HTML_DIR OUT_DIR [PAGE ...]   (pages relative to HTML_DIR)
set -euo pipefail

html_dir=${1:?usage: screenshot.sh HTML_DIR OUT_DIR [PAGE ...]}
out_dir=${2:?usage: screenshot.sh HTML_DIR OUT_DIR [PAGE ...]}
shift 2
pages=("$@")
if [ ${#pages[@]} -eq 0 ]; then
    pages=(book/intro.html)
    for page in "$html_dir"/notebooks/*.html; do pages+=("notebooks/$(basename "$page")"); done
fi

browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [ -z "$browser" ]; then
    echo "screenshot: error: no Chromium found; install Debian's package with 'apt-get install chromium'" >&2
    exit 1
fi

mkdir -p "$out_dir"
profile=$(mktemp -d)
trap 'rm -rf "$profile"' EXIT
for page in "${pages[@]}"; do
    [ -f "$html_dir/$page" ] || { echo "screenshot: error: no page $html_dir/$page" >&2; exit 1; }
    png="$out_dir/$(echo "${page%.html}" | tr '/' '_').png"
    # Offline-friendly flags: no background networking, a throwaway profile, no sandbox when root.
    "$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
        --disable-background-networking --disable-component-update --disable-sync \
        --user-data-dir="$profile" --hide-scrollbars --window-size=1280,2000 \
        --virtual-time-budget=5000 --screenshot="$png" "file://$(realpath "$html_dir/$page")" >/dev/null 2>&1
    [ -s "$png" ] || { echo "screenshot: error: Chromium wrote no image for $page" >&2; exit 1; }
    echo "screenshot: $png"
done
