#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a fixed budget and prints the executions per target.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 60 s, every target)
#
# New interesting inputs land in fuzz/corpus/<target>/ (libFuzzer writes them there); with
# FUZZ_CMIN=1 each corpus is minimised afterwards (cargo fuzz cmin). Crashes, timeouts and OOMs
# land in fuzz/artifacts/<target>/ and make the script exit 1. CI does not run this (too slow):
# tests/fuzz_corpus.rs replays the committed corpus in the ordinary `cargo test`.
#
# Sanitizer: `none` by default. The crate forbids unsafe code, the property fuzzed is "never
# panics", and only `--sanitizer none` builds with stable rustc (cargo-fuzz otherwise passes
# `-Zsanitizer=...`). FUZZ_SANITIZER=address turns AddressSanitizer on with RUSTC_BOOTSTRAP=1,
# which lets stable rustc accept that one -Z flag (this machine has no nightly toolchain).
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${1:-60}"
shift || true
sanitizer="${FUZZ_SANITIZER:-none}"
if [[ "$sanitizer" != none ]]; then
    export RUSTC_BOOTSTRAP=1
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "== installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cd fuzz && cargo fuzz list)
fi

# -a: debug assertions and overflow checks on, so arithmetic overflow is a finding too.
flags=(--sanitizer "$sanitizer" --debug-assertions)
echo "== cargo fuzz build (${#targets[@]} targets, sanitizer $sanitizer)"
(cd fuzz && cargo fuzz build "${flags[@]}")

logs="$(mktemp -d)"
failed=()
total=0
printf '%-16s %12s %8s %s\n' target executions corpus result >"$logs/summary"
for target in "${targets[@]}"; do
    mkdir -p "fuzz/corpus/$target"
    echo "== $target: ${budget}s"
    result=ok
    # -timeout: one input running 10 s is a finding; -rss_limit_mb: so is 2 GiB of memory.
    if ! (cd fuzz && cargo fuzz run "${flags[@]}" "$target" -- \
        -max_total_time="$budget" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1) \
        >"$logs/$target.log" 2>&1; then
        result="FAILED (fuzz/artifacts/$target/, log $logs/$target.log)"
        failed+=("$target")
        grep -E '^(==[0-9]+== ERROR|SUMMARY|thread .* panicked)' "$logs/$target.log" | head -5 || true
    fi
    if [[ "${FUZZ_CMIN:-0}" == 1 && "$result" == ok ]]; then
        (cd fuzz && cargo fuzz cmin "${flags[@]}" "$target") >>"$logs/$target.log" 2>&1
    fi
    execs="$(awk '/stat::number_of_executed_units/ {n=$2} END {print n+0}' "$logs/$target.log")"
    total=$((total + execs))
    files="$(find "fuzz/corpus/$target" -type f | wc -l)"
    printf '%-16s %12s %8s %s\n' "$target" "$execs" "$files" "$result" >>"$logs/summary"
done
printf '%-16s %12s\n' total "$total" >>"$logs/summary"
echo
cat "$logs/summary"
echo "logs: $logs"
if ((${#failed[@]} > 0)); then
    echo "findings in: ${failed[*]}"
    exit 1
fi
