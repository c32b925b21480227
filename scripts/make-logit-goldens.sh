#!/usr/bin/env bash
# Regenerates tests/golden/logits/*.json: llama.cpp's logits on the tiny random-weight models
# of every supported architecture (written by examples/write-tiny-models.rs), for one prefill
# batch and then single decoded tokens, twice: with an f32 cache and plain attention
# (tests/golden/logits/), and with llama.cpp's defaults, an f16 cache and flash attention
# (tests/golden/logits-flash/). The tests `llm::models::tests::tiny_models_match_llama_cpp` and
# `tiny_models_with_an_f16_cache_match_llama_cpp_flash_attention` check our model code against
# them, with our f32 and f16 caches.
# Needs llama.cpp (../shared/tools/llamacpp-anchor.sh builds it; LLAMACPP_DIR overrides).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
llama=${LLAMACPP_DIR:-$HOME/.cache/llamacpp-anchor/src/llama.cpp}
[[ -f $llama/include/llama.h ]] || bash "$root/../shared/tools/llamacpp-anchor.sh" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
gcc -O2 -o "$work/llama-logits" "$root/scripts/llama-logits.c" \
  -I"$llama/include" -I"$llama/ggml/include" -L"$llama/build/bin" \
  -lllama -lggml -lggml-base -Wl,-rpath,"$llama/build/bin"
(cd "$root" && cargo run --quiet --release --example write-tiny-models -- "$work/models") >/dev/null
# The same ids for every model: a prefill longer than gemma3's tiny window (4), then decodes.
prefill=5,40,77,100,120,33,90,200,17,64
decode=7,8,9
for set in logits logits-flash; do
  out=$root/tests/golden/$set
  mkdir -p "$out"
  for model in "$work"/models/*.gguf; do
    name=$(basename "$model" .gguf)
    sha=$(sha256sum "$model" | cut -d' ' -f1)
    LLAMA_LOGITS_DEFAULT_ATTENTION=$([[ $set == logits-flash ]] && echo 1 || echo 0) \
      "$work/llama-logits" "$model" "$prefill" "$decode" > "$work/steps.json"
    python3 - "$work/steps.json" "$out/$name.json" "$sha" "$prefill" "$decode" <<'PY'
import json, sys
steps = json.load(open(sys.argv[1]))["steps"]
ids = lambda s: [int(x) for x in s.split(",")]
golden = {"model_sha256": sys.argv[3], "prefill": ids(sys.argv[4]), "decode": ids(sys.argv[5]),
          "steps": [[round(v, 5) for v in s["logits"]] for s in steps]}
with open(sys.argv[2], "w") as f:
    json.dump(golden, f, separators=(",", ":"))
    f.write("\n")
PY
    echo "$out/$name.json"
  done
done
