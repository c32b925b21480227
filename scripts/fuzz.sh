#!/usr/bin/env bash
# Fuzzing paperdigest's readers of untrusted input with cargo-fuzz (libFuzzer).
#
#   scripts/fuzz.sh build                    build every target
#   scripts/fuzz.sh run SECONDS [TARGET...]  build, then fuzz each target for SECONDS
#   scripts/fuzz.sh seeds                    regenerate fuzz/seeds/ from the test fixtures
#   scripts/fuzz.sh cmin [TARGET...]         minimise the grown corpus into fuzz/seeds/
#
# Targets: gguf_load (GgufFile::open + Engine::load), pdf_extract (pdf::extract_bytes),
# hf_daily_json (Hugging Face answers), arxiv_atom (arXiv Atom feeds).
#
# Needs `cargo install cargo-fuzz`. cargo-fuzz passes -Z flags to rustc, so on a stable
# toolchain it runs with RUSTC_BOOTSTRAP=1. Environment:
#   FUZZ_SANITIZER  address (default) or none: coverage-guided libFuzzer without a sanitizer,
#                   for toolchains whose AddressSanitizer build fails
#   FUZZ_JOBS       targets fuzzed at once (default 2)
#   FUZZ_NICE       niceness of the fuzzers (default 19: they yield to everything else)
#   FUZZ_RSS_MB     libFuzzer's memory limit per process (default 2048): more is a crash
#
# Each run grows fuzz/corpus/<target>/ (ignored by git; the seeds in fuzz/seeds/ are read
# only), writes crashes to fuzz/artifacts/<target>/ and its log to fuzz/logs/<target>.log,
# and ends with a summary of executions, coverage and crashes per target. Reproduce a crash
# with `RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz -s $FUZZ_SANITIZER TARGET FILE`.
set -euo pipefail

cd "$(dirname "$0")/.."
ALL_TARGETS=(gguf_load pdf_extract hf_daily_json arxiv_atom)
SANITIZER="${FUZZ_SANITIZER:-address}"
JOBS="${FUZZ_JOBS:-2}"
NICE="${FUZZ_NICE:-19}"
RSS_MB="${FUZZ_RSS_MB:-2048}"
export RUSTC_BOOTSTRAP=1

fuzz() {
    nice -n "$NICE" cargo fuzz "$1" --fuzz-dir fuzz -s "$SANITIZER" "${@:2}"
}

build() {
    fuzz build
}

run_one() {
    local target=$1 seconds=$2
    mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" fuzz/logs
    fuzz run "$target" "fuzz/corpus/$target" "fuzz/seeds/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb="$RSS_MB" -timeout=60 \
        -artifact_prefix="fuzz/artifacts/$target/" -print_final_stats=1 \
        >"fuzz/logs/$target.log" 2>&1 || true
}

summary() {
    printf '%-14s %12s %8s %8s %8s  %s\n' target executions exec/s cov ft crashes
    for target in "$@"; do
        local log="fuzz/logs/$target.log"
        [ -f "$log" ] || continue
        local runs cov ft rate crashes
        runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
        ft=$(grep -o 'ft: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*')
        crashes=$(find "fuzz/artifacts/$target" -type f 2>/dev/null | wc -l)
        printf '%-14s %12s %8s %8s %8s  %s\n' "$target" "${runs:-?}" "${rate:-?}" "${cov:-?}" \
            "${ft:-?}" "$crashes"
    done
}

case "${1:-}" in
build)
    build
    ;;
run)
    seconds="${2:?usage: scripts/fuzz.sh run SECONDS [TARGET...]}"
    shift 2
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
    build
    running=0
    for target in "${targets[@]}"; do
        echo "fuzzing $target for ${seconds}s (log: fuzz/logs/$target.log)"
        run_one "$target" "$seconds" &
        running=$((running + 1))
        if [ "$running" -ge "$JOBS" ]; then
            wait -n
            running=$((running - 1))
        fi
    done
    wait
    summary "${targets[@]}"
    ;;
seeds)
    seeds="$PWD/fuzz/seeds"
    PAPERDIGEST_FUZZ_SEEDS="$seeds" cargo test --release --test fuzz_seeds -- --ignored
    PAPERDIGEST_FUZZ_SEEDS="$seeds" cargo test --release --lib write_fuzz_seeds -- --ignored
    ls -l "$seeds"/*
    ;;
cmin)
    shift
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
    for target in "${targets[@]}"; do
        fuzz cmin "$target" "fuzz/corpus/$target" -- "fuzz/seeds/$target"
        echo "fuzz/corpus/$target minimised; copy the inputs worth keeping into fuzz/seeds/$target"
    done
    ;;
summary)
    shift
    targets=("$@")
    [ ${#targets[@]} -gt 0 ] || targets=("${ALL_TARGETS[@]}")
    summary "${targets[@]}"
    ;;
*)
    sed -n '2,25p' "$0"
    exit 2
    ;;
esac
