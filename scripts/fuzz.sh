#!/usr/bin/env bash
# Fuzzes pgssl's parsers: runs each cargo-fuzz target in fuzz/ for SECONDS (default 60), one
# after the other, and prints how many inputs each one executed.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     # no TARGET: every target (cargo fuzz list)
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`). The sanitizer flags cargo-fuzz passes are
# nightly-only; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them, for this build only.
# Each run starts from the committed seeds in fuzz/corpus/<target> and writes what it
# finds to $PGSSL_FUZZ_WORK/<target> (default fuzz/target/corpus), so the committed corpus
# stays small; a crashing input lands in fuzz/artifacts/<target>/. Exit status 1 when any
# target crashed.
set -euo pipefail

seconds=${1:-60}
[[ $# -gt 0 ]] && shift
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
work=${PGSSL_FUZZ_WORK:-target/corpus}

if [[ $# -gt 0 ]]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

failed=()
summary=()
for target in "${targets[@]}"; do
    mkdir -p "$work/$target" "target/logs"
    log="target/logs/$target.log"
    echo "== $target: ${seconds}s"
    status=0
    cargo fuzz run "$target" "$work/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=25 -print_final_stats=1 >"$log" 2>&1 || status=$?
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    line="$target: ${execs:-?} executions in ${seconds}s"
    if [[ $status -ne 0 ]]; then
        failed+=("$target")
        line="$line, FAILED (exit $status; see fuzz/$log and fuzz/artifacts/$target)"
    fi
    echo "$line"
    summary+=("$line")
done

echo
echo "== summary"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "crashed: ${failed[*]}"
    exit 1
fi
