#!/usr/bin/env bash
# Times the README's two quick-start commands on a fresh clone of this repository: empty
# target/, empty model store and paper cache (the crates.io download cache stays as it is).
# Usage: scripts/time-quickstart.sh [WORKDIR]   (default: a new temporary folder)
set -u
repo=$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)
work=${1:-$(mktemp -d)}
git clone -q "$repo" "$work/clone" || exit 1
cd "$work/clone" || exit 1
export PAPERDIGEST_MODELS=$work/models PAPERDIGEST_CACHE=$work/cache
start=$(date +%s)
cargo run --release -- digest examples/paperdigest-note.pdf --lang en > "$work/quickstart-1.log" 2>&1
echo "command 1 (digest): exit $? in $(( $(date +%s) - start )) s, log $work/quickstart-1.log"
start=$(date +%s)
cargo test --release > "$work/quickstart-2.log" 2>&1
echo "command 2 (tests): exit $? in $(( $(date +%s) - start )) s, log $work/quickstart-2.log"
grep -E "^test result" "$work/quickstart-2.log"
