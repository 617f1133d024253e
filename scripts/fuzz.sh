#!/usr/bin/env bash
# Every cargo-fuzz target of fuzz/ for a bounded time (docs/reliability.md, "Fuzzing").
#
#   scripts/fuzz.sh [seconds per target, default 120] [target ...]
#
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`) and a nightly toolchain. sbm is safe
# Rust (`forbid(unsafe_code)`), so the targets are built without a sanitizer but with debug
# assertions (overflow checks, `debug_assert!`): `-s none --debug-assertions`; FUZZ_FLAGS
# replaces those flags (FUZZ_FLAGS="" for cargo-fuzz's default AddressSanitizer build).
# Each target runs on one core from its corpus in fuzz/corpus/<target>/ (kept between runs, not
# committed) and the hand-written seeds in fuzz/seeds/<target>/; a crash stops the run
# with its input in fuzz/artifacts/<target>/ and this script exits non-zero after the others.
# The last lines of each target's libFuzzer output (runs, coverage) are printed and kept in
# target/fuzz-logs/<target>.log.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds="${1:-120}"
shift || true
flags="${FUZZ_FLAGS--s none --debug-assertions}"
toolchain="${FUZZ_TOOLCHAIN:-+nightly}"
targets=("$@")
if [ "${#targets[@]}" -eq 0 ]; then
    mapfile -t targets < <(cargo "$toolchain" fuzz list)
fi
logs=../target/fuzz-logs
mkdir -p "$logs"
# shellcheck disable=SC2086
cargo "$toolchain" fuzz build $flags
status=0
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t"
    echo "== $t: ${seconds}s"
    # shellcheck disable=SC2086
    if cargo "$toolchain" fuzz run $flags "$t" "corpus/$t" "seeds/$t" -- -max_total_time="$seconds" \
        -print_final_stats=1 >"$logs/$t.log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
    fi
    grep -E '^(#[0-9]+ +DONE|Done [0-9]+ runs|stat::number_of_executed_units|stat::peak_rss_mb)' \
        "$logs/$t.log" || tail -n 5 "$logs/$t.log"
    echo "   $result"
done
exit "$status"
