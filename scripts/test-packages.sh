#!/usr/bin/env bash
# Tests the Debian packages on this machine (as root; run by scripts/test.sh):
#
#   1. scripts/package.sh builds them; lintian reports no error on either;
#   2. dpkg -i installs the extension into PostgreSQL NN and pgssl into /usr/bin;
#   3. on a throwaway cluster of that PostgreSQL, CREATE EXTENSION pgssl gives
#      the packaged version, `pgssl setup` turns TLS on with it, and
#      `pgssl check` connects with sslmode=verify-full;
#   4. ALTER EXTENSION pgssl UPDATE from each older version the package keeps
#      an install script of reaches the packaged version, through the chain of
#      upgrade scripts;
#   5. dpkg -r removes every file the packages installed.
#
#   scripts/test-packages.sh [NN]        # NN: the PostgreSQL major, default 15
#
# dpkg -r also removes an extension that `cargo pgrx install` put in the same
# place before, so at the end the extension is installed again from the
# checkout in PGSSL_REINSTALL_FROM (default: this one) as scripts/setup.sh
# installs it (`cargo pgrx install`, then the frozen install scripts of
# pgssl_ext/sql/); set it to an empty string to leave it uninstalled. PGSSL_PACKAGE_PROFILE passes to
# scripts/package.sh (dev: quicker, unoptimized binaries).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

major=${1:-15}
reinstall_from=${PGSSL_REINSTALL_FROM-$repo}
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
fail() {
  echo "test-packages: FAIL: $*" >&2
  exit 1
}
if [ "$(id -u)" -ne 0 ]; then
  fail "dpkg -i needs root"
fi

if ! command -v lintian >/dev/null; then
  say "Installing lintian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends lintian
fi

start=$(date +%s)
scripts/package.sh "$major"
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
ext_deb=$(ls "$target_dir"/debian/postgresql-"$major"-pgssl_*.deb)
cli_deb=$(ls "$target_dir"/debian/pgssl_*.deb)
say "Packages built in $(($(date +%s) - start)) s"

say "lintian"
lintian_out=$(lintian --fail-on none "$ext_deb" "$cli_deb" || true)
printf '%s\n' "$lintian_out"
if printf '%s\n' "$lintian_out" | grep -q '^E: '; then
  fail "lintian reports errors"
fi
echo "lintian: $(printf '%s\n' "$lintian_out" | grep -c '^E: ' || true) errors, $(printf '%s\n' "$lintian_out" | grep -c '^W: ' || true) warnings"

pg_bin=/usr/lib/postgresql/$major/bin
tmp=$(mktemp -d /tmp/pgssl-packages.XXXXXX)
chmod 0755 "$tmp"
chown postgres: "$tmp"
as_postgres() { runuser -u postgres -- "$@"; }
cleanup() {
  if [ -f "$tmp/data/postmaster.pid" ]; then
    as_postgres "$pg_bin/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

say "dpkg -i"
dpkg -i "$ext_deb" "$cli_deb"
installed=$tmp/installed-files
dpkg-query -L "postgresql-$major-pgssl" pgssl | sort -u > "$installed"
libdir=$("$pg_bin/pg_config" --pkglibdir)
sharedir=$("$pg_bin/pg_config" --sharedir)
for f in "$libdir/pgssl.so" "$sharedir/extension/pgssl.control" /usr/bin/pgssl \
  /usr/share/man/man1/pgssl.1.gz /usr/share/bash-completion/completions/pgssl; do
  grep -qx "$f" "$installed" || fail "$f is not in the packages"
  [ -f "$f" ] || fail "$f is not installed"
done
ext_version=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$sharedir/extension/pgssl.control")
/usr/bin/pgssl --version
/usr/bin/pgssl --version | grep -q "sslmode semantics of libpq" || fail "pgssl --version"

say "A PostgreSQL $major cluster with the packaged extension"
as_postgres "$pg_bin/initdb" -D "$tmp/data" -U postgres -A trust >/dev/null
mkdir "$tmp/home" && chown postgres: "$tmp/home"
started=
for _ in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 30000))
  if as_postgres "$pg_bin/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w start \
    -o "-p $port -k $tmp -c listen_addresses=127.0.0.1" >/dev/null; then
    started=1
    break
  fi
done
[ -n "$started" ] || fail "the cluster does not start: $(cat "$tmp/server.log")"
superuser="host=$tmp port=$port dbname=postgres user=postgres"
psql_q() { as_postgres "$pg_bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 "$superuser" -c "$1"; }
psql_q "CREATE EXTENSION pgssl"
got=$(psql_q "SELECT extversion FROM pg_extension WHERE extname = 'pgssl'")
[ "$got" = "$ext_version" ] || fail "CREATE EXTENSION pgssl made version $got, not $ext_version"
echo "CREATE EXTENSION pgssl: version $got"

# Every earlier release the package keeps an install script of updates to the
# packaged version, through the chain of upgrade scripts (0.1.0 -> 0.2.0 -> ...).
for script in "$sharedir"/extension/pgssl--*.sql; do
  from=$(basename "$script" | sed -n 's/^pgssl--\([^-]*\)\.sql$/\1/p')
  [ -n "$from" ] && [ "$from" != "$ext_version" ] || continue
  psql_q "DROP EXTENSION pgssl; CREATE EXTENSION pgssl VERSION '$from'; ALTER EXTENSION pgssl UPDATE"
  got=$(psql_q "SELECT extversion FROM pg_extension WHERE extname = 'pgssl'")
  [ "$got" = "$ext_version" ] || fail "ALTER EXTENSION pgssl UPDATE from $from gave $got"
  echo "ALTER EXTENSION pgssl UPDATE: $from -> $got"
done

say "pgssl setup and pgssl check with the packaged command"
HOME=$tmp/home /usr/bin/pgssl setup "$superuser" --hostname 127.0.0.1 --root-cert "$tmp/root.crt"
check=$(HOME=$tmp/home /usr/bin/pgssl check \
  "host=127.0.0.1 port=$port dbname=postgres user=postgres sslmode=verify-full sslrootcert=$tmp/root.crt")
printf '%s\n' "$check"
printf '%s\n' "$check" | grep -q '^sslmode: *verify-full' || fail "pgssl check: no verify-full"
printf '%s\n' "$check" | grep -q 'host name "127.0.0.1"' || fail "pgssl check: host name not verified"
as_postgres "$pg_bin/pg_ctl" -D "$tmp/data" -m fast -w stop >/dev/null

say "dpkg -r"
dpkg -r pgssl "postgresql-$major-pgssl"
left=0
while read -r f; do
  # Folders shared with other packages (/usr/bin, /usr/share/man/man1, ...) stay.
  if [ -e "$f" ] && [ ! -d "$f" ]; then
    echo "left behind: $f" >&2
    left=$((left + 1))
  fi
done < "$installed"
[ "$left" -eq 0 ] || fail "dpkg -r left $left files"
echo "dpkg -r: none of the $(wc -l < "$installed") paths the packages installed is left (shared folders stay)"
dpkg-query -W -f='${Status}\n' pgssl 2>/dev/null | grep -q "install ok" && fail "pgssl still installed"

if [ -n "$reinstall_from" ]; then
  say "Reinstalling the extension from $reinstall_from"
  (cd "$reinstall_from/pgssl_ext" && cargo pgrx install --pg-config "$pg_bin/pg_config")
  install -m 0644 "$reinstall_from"/pgssl_ext/sql/pgssl--*.sql "$sharedir/extension/"
fi
say "Package tests passed in $(($(date +%s) - start)) s"
