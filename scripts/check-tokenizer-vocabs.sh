#!/usr/bin/env bash
# Compares `paperdigest tokenize` with llama.cpp's `llama-tokenize` on the vocabulary-only GGUF
# files llama.cpp ships in its source tree (models/ggml-vocab-*.gguf), over the tokenizer corpus
# and each vocabulary's own test input: a check of the pre-tokenizers no real test model uses
# (llama3/llama-bpe, gpt-2, deepseek-llm, falcon, ...). Not part of `cargo test`: it needs the
# llama.cpp source and build of the anchor (see ../shared/tools/llamacpp-anchor.sh).
#
# Usage: scripts/check-tokenizer-vocabs.sh [VOCAB ...]   (default: every ggml-vocab-*.gguf)
#   LLAMACPP_SRC  the llama.cpp source folder (default: ~/.cache/llamacpp-anchor/src/llama.cpp)
#   LLAMACPP_BIN  folder with llama-tokenize (default: $LLAMACPP_SRC/build/bin)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
src=${LLAMACPP_SRC:-$HOME/.cache/llamacpp-anchor/src/llama.cpp}
bin=${LLAMACPP_BIN:-$src/build/bin}
[[ -x $bin/llama-tokenize ]] || { echo "no llama-tokenize in $bin" >&2; exit 1; }
(cd "$root" && cargo build --release --quiet)
ours=$root/target/release/paperdigest
if [[ $# -gt 0 ]]; then vocabs=("$@"); else
  vocabs=(); for f in "$src"/models/ggml-vocab-*.gguf; do v=${f##*/ggml-vocab-}; vocabs+=("${v%.gguf}"); done
fi
status=0
for v in "${vocabs[@]}"; do
  gguf=$src/models/ggml-vocab-$v.gguf
  if ! "$ours" tokenize --model "$gguf" --text x >/dev/null 2>&1; then
    printf '%-18s not supported: %s\n' "$v" "$("$ours" tokenize --model "$gguf" --text x 2>&1 | grep -o 'pre-tokenizer `[^`]*`\|tokenizer model `[^`]*`' | head -1)"
    continue
  fi
  ok=0; n=0; bad=()
  for input in "$root"/tests/golden/tokenizer/corpus/*.txt "$gguf.inp"; do
    [[ -f $input ]] || continue
    n=$((n + 1))
    theirs=$("$bin/llama-tokenize" -m "$gguf" -f "$input" --ids --log-disable --no-bos --no-parse-special --no-escape 2>/dev/null)
    mine=$("$ours" tokenize --model "$gguf" --file "$input" 2>/dev/null || true)
    if [[ $theirs == "$mine" ]]; then ok=$((ok + 1)); else bad+=("$(basename "$input")"); status=1; fi
  done
  printf '%-18s %2d/%d match %s\n' "$v" "$ok" "$n" "${bad[*]:-}"
done
exit $status
