#!/usr/bin/env bash
# Runs every test: set-up, then unit and end-to-end tests of the whole
# workspace, then the extension's in-database (#[pg_test]) tests. All share
# one dev-profile build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "Unit and end-to-end tests (real TLS clusters, psql as the reference client)"
cargo test --workspace --exclude pgssl_ext

say "Extension unit tests and #[pg_test]s"
pgdata_parent=$(mktemp -d /tmp/pgssl-pgrx-test.XXXXXX)
trap 'rm -rf "$pgdata_parent"' EXIT
chmod 0755 "$pgdata_parent"
export CARGO_PGRX_TEST_PGDATA="$pgdata_parent/data"
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses root: the test cluster runs as the postgres OS user.
  chown postgres: "$pgdata_parent"
  export CARGO_PGRX_TEST_RUNAS=postgres
fi
(cd pgssl_ext && cargo pgrx test pg15)
say "Benchmark smoke run (fails only when a comparison cannot run, never on a timing)"; cargo run -p pgssl_bench -- --quick
