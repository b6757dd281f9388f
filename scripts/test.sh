#!/usr/bin/env bash
# Runs every test: set-up, the lints (rustfmt, clippy -D warnings), then unit
# and end-to-end tests of the whole workspace, the extension's in-database
# (#[pg_test]) tests, a smoke run of the benchmark, and the Debian packages
# (scripts/test-packages.sh); ends with the total over every test binary.
#
#   scripts/test.sh          all of it on PostgreSQL 15 and 18; on 13 and 17 the
#                            in-database tests and the end-to-end tests of the
#                            session functions, the CA, the audit and server
#                            certificates; pgssl against psql 18 on 13, 15, 17
#                            and 18 servers (the first run builds 13, 17 and 18,
#                            a few minutes each: see scripts/pg.sh)
#   scripts/test.sh --pg15   all of it on PostgreSQL 15 only (quick, for a loop)
set -euo pipefail
cd "$(dirname "$0")/.."
all_versions=true
case "${1:-}" in
  --pg15) all_versions=false ;;
  # The default since every release is tested; kept so older habits still work.
  --all-versions) ;;
  "") ;;
  *)
    echo "usage: $0 [--pg15]" >&2
    exit 2
    ;;
esac
if $all_versions; then scripts/setup.sh --all-versions; else scripts/setup.sh; fi

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
# A full run builds the workspace for four releases: say what disk it has, so
# that a run that fills it is not a mystery.
say "Free disk for target/: $(df -h --output=avail . | tail -1 | tr -d ' ')"
log=$(mktemp /tmp/pgssl-test-log.XXXXXX)
pgdata_parent=$(mktemp -d /tmp/pgssl-pgrx-test.XXXXXX)
trap 'rm -rf "$pgdata_parent" "$log"' EXIT
# Shows a command's output and keeps it for the total; fails when it fails.
run() { "$@" 2>&1 | tee -a "$log"; }

say "Lints: formatting, and clippy with every warning an error"
cargo fmt --all -- --check
run cargo clippy --workspace --all-targets -- -D warnings
# The fuzz targets compile some of the extension's own files: they must keep building
# (scripts/fuzz.sh runs them; that needs cargo-fuzz and minutes per target).
(cd fuzz && run cargo check --bins --quiet)

if $all_versions; then
  # pgssl against psql 18 (libpq 18) joins every end-to-end run below.
  PGSSL_PSQL18="$(dirname "$(scripts/pg.sh 18)")/psql"
  export PGSSL_PSQL18
fi

say "Unit and end-to-end tests (real TLS clusters, psql as the reference client)"
run cargo test --workspace --exclude pgssl_ext
if $all_versions; then
  run cargo test -p pgssl_cli --test libpq18 -- --include-ignored
fi

say "Extension unit tests and #[pg_test]s"
chmod 0755 "$pgdata_parent"
if [ "$(id -u)" -eq 0 ]; then
  # initdb refuses root: the test cluster runs as the postgres OS user.
  chown postgres: "$pgdata_parent"
  export CARGO_PGRX_TEST_RUNAS=postgres
fi
(cd pgssl_ext && CARGO_PGRX_TEST_PGDATA="$pgdata_parent/data-15" run cargo pgrx test pg15)

if $all_versions; then
  for v in 18 17 13; do
    bindir=$(dirname "$(scripts/pg.sh "$v")")
    # The end-to-end tests first, against the build scripts/setup.sh installed:
    # cargo pgrx test then installs its own build, with a tests schema.
    if [ "$v" = 18 ]; then
      say "PostgreSQL $v: unit and end-to-end tests"
      PGSSL_PG_BINDIR=$bindir run cargo test --workspace --exclude pgssl_ext
      PGSSL_PG_BINDIR=$bindir run cargo test -p pgssl_cli --test libpq18 -- --include-ignored
    else
      say "PostgreSQL $v: end-to-end tests of the session, CA, audit and server certificates, and pgssl against psql 18"
      PGSSL_PG_BINDIR=$bindir run cargo test -p pgssl_tests --test session --test ca --test audit --test server_cert
      PGSSL_PG_BINDIR=$bindir run cargo test -p pgssl_cli --test libpq18 -- --include-ignored
    fi
    say "PostgreSQL $v: extension unit tests and #[pg_test]s"
    (cd pgssl_ext && CARGO_PGRX_TEST_PGDATA="$pgdata_parent/data-$v" run cargo pgrx test "pg$v")
  done
fi

say "Benchmark smoke run (fails only when a comparison cannot run, never on a timing)"
run cargo run -p pgssl_bench -- --quick

say "Debian packages: lintian, dpkg -i, CREATE EXTENSION, pgssl check, dpkg -r"
# From the dev profile, whose builds the steps above made: the release builds
# take minutes (scripts/package.sh alone, as a release would use it, does them).
# It ends by installing the extension from this checkout again.
PGSSL_PACKAGE_PROFILE=${PGSSL_PACKAGE_PROFILE:-dev} scripts/test-packages.sh

grep -Eo 'test result: [a-zA-Z]+\. [0-9]+ passed; [0-9]+ failed' "$log" |
  awk '{ passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }'
