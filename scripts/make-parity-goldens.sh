#!/usr/bin/env bash
# Regenerates the generation parity goldens tests/golden/parity/<model>.json: for each prompt of
# tests/golden/parity/prompts.json, llama.cpp's greedy raw continuation of 24 tokens
#   llama-completion -m MODEL -p PROMPT --no-escape --temp 0 -n 24 --ignore-eos -no-cnv
#                    --no-display-prompt [-fa off]
# (no chat template; BOS only where the GGUF asks for it; end-of-generation tokens banned), for
# each real model, with llama.cpp's default attention (flash attention, `-fa auto`) and with its
# plain attention (`-fa off`): the two differ in rounding and, on near-ties, in the token they
# pick, so both are references. Recorded per prompt: the prompt's ids as llama-completion feeds
# them (`llama-tokenize`, BOS and special tokens as llama-completion does) and, per attention
# kind, the continuation's bytes as printed (the text, or hex when 24 tokens end inside a UTF-8
# character) and the continuation re-tokenized by `llama-tokenize` (for reference only:
# llama-completion does not print the ids it sampled, so agreement is judged on the text).
# tests/parity.rs compares.
#
# Usage: scripts/make-parity-goldens.sh [MODEL_NAME ...]   (default: all three)
#   LLAMACPP_BIN  folder with llama-completion and llama-tokenize
#                 (default: ~/.cache/llamacpp-anchor/src/llama.cpp/build/bin)
#   MODELS_DIR    folder with the GGUF files under their registry file names; by default each
#                 model is provisioned with `paperdigest models pull NAME`
#   THREADS       llama.cpp threads (default 2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${LLAMACPP_BIN:-$HOME/.cache/llamacpp-anchor/src/llama.cpp/build/bin}
for tool in llama-completion llama-tokenize; do
  [[ -x $bin/$tool ]] || { echo "no $tool in $bin (set LLAMACPP_BIN)" >&2; exit 1; }
done
declare -A files=(
  [smollm2-135m-instruct]=SmolLM2-135M-Instruct.Q4_1.gguf
  [qwen2.5-coder-1.5b-instruct]=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
  [gemma-3-270m]=gemma-3-270m-q4_k_m.gguf
)
names=("$@")
[[ ${#names[@]} -gt 0 ]] || names=(smollm2-135m-instruct qwen2.5-coder-1.5b-instruct gemma-3-270m)

for name in "${names[@]}"; do
  file=${files[$name]:-}
  [[ -n $file ]] || { echo "unknown model $name" >&2; exit 2; }
  if [[ -n ${MODELS_DIR:-} ]]; then gguf=$MODELS_DIR/$file
  else gguf=$(cd "$root" && cargo run --release --quiet -- models pull "$name"); fi
  [[ -f $gguf ]] || { echo "missing model file $gguf" >&2; exit 1; }
  echo "== $name ($gguf)" >&2
  python3 - "$root" "$bin" "$gguf" "$name" "$file" "${THREADS:-2}" <<'PY'
import json, subprocess, sys, tempfile, os
root, bin_dir, gguf, name, file, threads = sys.argv[1:]
prompts = json.load(open(os.path.join(root, "tests/golden/parity/prompts.json")))
N = 24

def tokenize(data: bytes, bos: bool, special: bool):
    with tempfile.NamedTemporaryFile(delete=False) as f:
        f.write(data)
        path = f.name
    try:
        args = [os.path.join(bin_dir, "llama-tokenize"), "-m", gguf, "-f", path, "--ids",
                "--log-disable", "--no-escape"]
        if not bos:
            args.append("--no-bos")
        if not special:
            args.append("--no-parse-special")
        out = subprocess.run(args, capture_output=True, check=True).stdout
        return json.loads(out)
    except (subprocess.CalledProcessError, ValueError):
        return None
    finally:
        os.unlink(path)

cases = []
for p in prompts:
    prompt = p["prompt"]
    case = {"name": p["name"], "prompt_ids": tokenize(prompt.encode(), bos=True, special=True),
            "continuations": []}
    for attention in ["auto", "off"]:
        out = subprocess.run(
            [os.path.join(bin_dir, "llama-completion"), "-m", gguf, "-p", prompt, "--no-escape",
             "--temp", "0", "-n", str(N), "--ignore-eos", "-no-cnv", "--no-display-prompt",
             "-t", threads, "-c", "512", "--no-warmup", "--seed", "0", "-fa", attention],
            capture_output=True, check=True).stdout
        # llama-completion ends its output with "\n\n" after the last token.
        if not out.endswith(b"\n\n"):
            raise SystemExit(f"{name}/{p['name']}: unexpected output ending {out[-10:]!r}")
        text = out[:-2]
        cont = {"flash_attn": attention}
        try:
            cont["text"] = text.decode("utf-8")
        except UnicodeDecodeError:
            cont["text_hex"] = text.hex()
        cont["text_ids"] = tokenize(text, bos=False, special=False)
        case["continuations"].append(cont)
        print(f"  {p['name']} (-fa {attention}): {text!r}", file=sys.stderr)
    cases.append(case)

cpu = "unknown"
try:
    for line in open("/proc/cpuinfo"):
        if line.startswith("flags"):
            flags = line.split(":", 1)[1].split()
            cpu = " ".join(f for f in ["avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512vl",
                                       "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile"]
                           if f in flags)
            break
except OSError:
    pass
golden = {
    "model": name,
    # ggml's rounding follows the SIMD it was built for (-DGGML_NATIVE=ON): llama.cpp's greedy
    # text differs between an AVX2 and an AVX-512 machine, so the goldens name theirs.
    "llama_cpp_cpu_features": cpu,
    "file": file,
    "tokens": N,
    "generator": "llama-completion -p PROMPT --no-escape --temp 0 -n 24 --ignore-eos -no-cnv "
                 "--no-display-prompt -c 512 --seed 0 -fa {auto,off}",
    "cases": cases,
}
path = os.path.join(root, "tests/golden/parity", name + ".json")
with open(path, "w") as f:
    f.write(json.dumps(golden, ensure_ascii=False, indent=1) + "\n")
print(f"wrote {path}", file=sys.stderr)
PY
done
