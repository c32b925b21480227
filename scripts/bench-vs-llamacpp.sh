#!/usr/bin/env bash
# Engine speed against llama.cpp on the same GGUF file, in one run: llama-bench and
# `paperdigest bench speed` alternate on each model, and the ratios are printed.
# Usage: scripts/bench-vs-llamacpp.sh [--threads N] [--depth D] [--kv-cache T] [--rounds N] MODEL.gguf...
#   --depth D     also measure decode with D tokens already in the context (llama-bench -d).
#   --kv-cache T  our attention cache, f16 (default) or f32; llama-bench keeps its default, f16.
#   --rounds N    alternate the two engines N times (default 3) and print the median of each
#                 rate and of each round's ratio: one round on a shared machine swings by 15%.
# llama.cpp is built by ../shared/tools/llamacpp-anchor.sh (once, ~10 minutes) unless
# LLAMACPP_BIN names a folder holding llama-bench.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
threads=2
depth=0
kv_cache=f16
rounds=3
models=()
while (($#)); do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --depth) depth=$2; shift 2 ;;
    --kv-cache) kv_cache=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    -h|--help) sed -n 2,10p "$0"; exit 0 ;;
    *) models+=("$1"); shift ;;
  esac
done
((${#models[@]})) || { echo "usage: $0 [--threads N] [--depth D] [--kv-cache T] [--rounds N] MODEL.gguf..." >&2; exit 2; }
bin=${LLAMACPP_BIN:-$(bash "$root/../shared/tools/llamacpp-anchor.sh" | tail -1)}
(cd "$root" && cargo build --quiet --release)
ours=$root/target/release/paperdigest

llama_rates() { # model, depth -> "prefill decode" tok/s
  "$bin/llama-bench" -m "$1" -p 512 -n 64 -d "$2" -t "$threads" -r 2 -o json 2>/dev/null |
    python3 -c '
import json, sys
rows = json.load(sys.stdin)
pp = next(r["avg_ts"] for r in rows if r["n_prompt"] > 0)
tg = next(r["avg_ts"] for r in rows if r["n_gen"] > 0)
print(pp, tg)'
}
our_rates() { # model, depth -> "prefill decode ttft_ms peak_rss_mb kv_mb file_mb"
  "$ours" -q bench speed --model "$1" --prompt-tokens 512 --gen-tokens 64 --context "$2" \
    --repetitions 2 --threads "$threads" --kv-cache "$kv_cache" --json |
    python3 -c '
import json, sys
r = json.load(sys.stdin)
print(r["prefill_tok_s"], r["decode_tok_s"], r["ttft_ms"], r["peak_rss_mb"] or 0, r["kv_cache_mb"], r["file_size_mb"])'
}

echo "our attention cache: $kv_cache; llama.cpp's: f16 with flash attention (its defaults)"
echo "medians of $rounds alternating rounds; ratios are medians of each round's ratio"
printf '%-44s %6s %9s %9s %7s %9s %9s %7s %9s %9s\n' model depth llama_pp ours_pp ratio \
  llama_tg ours_tg ratio rss_mb budget_mb
for model in "${models[@]}"; do
  for d in 0 $( ((depth > 0)) && echo "$depth"); do
    samples=()
    for ((r = 0; r < rounds; r++)); do
      read -r lpp ltg < <(llama_rates "$model" "$d")
      read -r opp otg ttft rss kv file < <(our_rates "$model" "$d")
      samples+=("$lpp,$opp,$ltg,$otg,$rss,$kv,$file")
    done
    python3 - "$model" "$d" "${samples[@]}" <<'PY'
import os, statistics, sys
m, d = sys.argv[1:3]
rounds = [tuple(map(float, s.split(","))) for s in sys.argv[3:]]
med = lambda i: statistics.median(r[i] for r in rounds)
ratio = lambda ours, theirs: statistics.median(r[ours] / r[theirs] for r in rounds)
rss = max(r[4] for r in rounds)
budget = rounds[0][6] + rounds[0][5] + 300
print(f"{os.path.basename(m)[:44]:<44} {d:>6} {med(0):9.1f} {med(1):9.1f} {ratio(1, 0):6.2f}x "
      f"{med(2):9.1f} {med(3):9.1f} {ratio(3, 2):6.2f}x {rss:9.0f} {budget:9.0f}")
PY
  done
done
