#!/usr/bin/env bash
# How far our forward pass is from llama.cpp's on real models, next to how far llama.cpp is from
# itself. For each model and prompt: the prompt is prefilled, then three tokens are decoded one
# at a time, by llama.cpp (scripts/llama-logits.c: f32 KV cache, flash attention off) and by us
# (examples/dump-logits.rs --kv-cache f32, to match). Printed per step: the mean |logit
# difference| ours vs llama.cpp, and llama.cpp's own difference between feeding the same ids in one batch and one at a time
# (its batched and single-row kernels round differently), as the scale of noise to compare with.
#
# Usage: scripts/logit-distance.sh MODEL.gguf...
# Needs llama.cpp (../shared/tools/llamacpp-anchor.sh builds it; LLAMACPP_DIR overrides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
llama=${LLAMACPP_DIR:-$HOME/.cache/llamacpp-anchor/src/llama.cpp}
[[ -f $llama/include/llama.h ]] || bash "$root/../shared/tools/llamacpp-anchor.sh" >/dev/null
[[ $# -gt 0 ]] || { echo "usage: $0 MODEL.gguf..." >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/llama-logits" "$root/scripts/llama-logits.c" \
  -I"$llama/include" -I"$llama/ggml/include" -L"$llama/build/bin" \
  -lllama -lggml -lggml-base -Wl,-rpath,"$llama/build/bin"
(cd "$root" && cargo build --quiet --release --example dump-logits)
ours=$root/target/release/examples/dump-logits
bin=$root/target/release/paperdigest
prompts=(
  "The history of natural language processing began in the 1950s, when researchers first attempted machine translation between Russian and English."
  $'def fibonacci(n):\n    # return the n-th Fibonacci number'
  "Hà Nội là thủ đô của Việt Nam, nổi tiếng với"
)
printf '%-40s %-7s %s\n' model prompt "mean |dlogit| per step: ours vs llama.cpp | llama.cpp batched vs one at a time"
for model in "$@"; do
  for i in "${!prompts[@]}"; do
    ids=$("$bin" -q tokenize --model "$model" --text "${prompts[$i]}" | tr -d '[] \n')
    # Three decoded ids taken from the prompt itself, so they exist in every vocabulary.
    decode=$(echo "$ids" | cut -d, -f2-4)
    "$work/llama-logits" "$model" "$ids" "$decode" > "$work/llama.json"
    "$work/llama-logits" "$model" "$ids,$decode" > "$work/llama-batched.json"
    "$ours" --kv-cache f32 "$model" "$ids" "$decode" > "$work/ours.json"
    python3 - "$work" "$(basename "$model")" "$i" <<'PY'
import json, sys
work, name, prompt = sys.argv[1:]
load = lambda f: [s["logits"] for s in json.load(open(f"{work}/{f}"))["steps"]]
llama, batched, ours = load("llama.json"), load("llama-batched.json"), load("ours.json")
dist = lambda a, b: sum(abs(x - y) for x, y in zip(a, b)) / len(a)
steps = " ".join(f"{dist(a, b):.4f}" for a, b in zip(ours, llama))
print(f"{name[:40]:<40} {prompt:<7} {steps} | {dist(batched[0], llama[-1]):.4f}")
PY
  done
done
