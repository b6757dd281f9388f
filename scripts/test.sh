#!/usr/bin/env bash
# Runs every test: set-up, the lints (rustfmt, clippy -D warnings), then unit
# and end-to-end tests of the whole workspace, the extension's in-database
# (#[pg_test]) tests, and a smoke run of the benchmark; ends with the total
# over every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
log=$(mktemp /tmp/pgssl-test-log.XXXXXX)
pgdata_parent=$(mktemp -d /tmp/pgssl-pgrx-test.XXXXXX)
trap 'rm -rf "$pgdata_parent" "$log"' EXIT
# Shows a command's output and keeps it for the total; fails when it fails.
run() { "$@" 2>&1 | tee -a "$log"; }

say "Lints: formatting, and clippy with every warning an error"
cargo fmt --all -- --check
run cargo clippy --workspace --all-targets -- -D warnings

say "Unit and end-to-end tests (real TLS clusters, psql as the reference client)"
run cargo test --workspace --exclude pgssl_ext

say "Extension unit tests and #[pg_test]s"
chmod 0755 "$pgdata_parent"
export CARGO_PGRX_TEST_PGDATA="$pgdata_parent/data"
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses root: the test cluster runs as the postgres OS user.
  chown postgres: "$pgdata_parent"
  export CARGO_PGRX_TEST_RUNAS=postgres
fi
(cd pgssl_ext && run cargo pgrx test pg15)

say "Benchmark smoke run (fails only when a comparison cannot run, never on a timing)"
run cargo run -p pgssl_bench -- --quick

grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" |
  awk '{ passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }'
