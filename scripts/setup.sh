#!/usr/bin/env bash
# One-time set-up on Debian 12, safe to run again: installs what is missing
# (Debian packages, cargo-pgrx 0.18.1), points pgrx at PostgreSQL 15, and
# builds and installs the pgssl extension into PostgreSQL 15.
#
#   scripts/setup.sh                    PostgreSQL 15, Debian 12's own (quick)
#   scripts/setup.sh --all-versions     also 13, 17 and 18
#   scripts/setup.sh --versions "15 18" the releases named
#
# Releases other than 15 are built once by scripts/pg.sh into a cache folder
# (${PGSSL_PG_CACHE:-/var/cache/pgssl/pg}); later runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
VERSIONS=("$PG_MAJOR")
while [ $# -gt 0 ]; do
  case "$1" in
    --all-versions) VERSIONS=(13 15 17 18) ;;
    --versions)
      read -r -a VERSIONS <<<"${2:?--versions needs a list, e.g. \"15 18\"}"
      shift
      ;;
    *)
      echo "usage: $0 [--all-versions | --versions \"13 15 17 18\"]" >&2
      exit 2
      ;;
  esac
  shift
done
PGRX_VERSION=0.18.1
PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
  libclang-dev clang pkg-config libssl-dev libkrb5-dev openssl sudo
  faketime  # libfaketime: tests move a server's clock
  python3-prometheus-client  # tests parse pgssl report --prometheus with it
)

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "Installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! cargo pgrx --version 2>/dev/null | grep -q " $PGRX_VERSION\$"; then
  say "Installing cargo-pgrx $PGRX_VERSION"
  cargo install cargo-pgrx --version "=$PGRX_VERSION" --locked
fi

# pg_config of each release asked for (building those not yet in the cache).
declare -A PG_CONFIGS=()
for v in "${VERSIONS[@]}"; do
  if [ "$v" = "$PG_MAJOR" ]; then
    PG_CONFIGS[$v]=$PG_CONFIG
  else
    PG_CONFIGS[$v]=$(scripts/pg.sh "$v")
  fi
done

# `cargo pgrx init` rewrites the whole config: keep the releases it already
# knows, add the ones asked for.
pgrx_config="${PGRX_HOME:-$HOME/.pgrx}/config.toml"
init_needed=false
for v in "${VERSIONS[@]}"; do
  grep -qs "^pg$v = \"${PG_CONFIGS[$v]}\"" "$pgrx_config" || init_needed=true
done
if $init_needed; then
  init_flags=()
  declare -A known=()
  for v in "${VERSIONS[@]}"; do known[$v]=${PG_CONFIGS[$v]}; done
  while IFS= read -r line; do
    if [[ $line =~ ^pg([0-9]+)\ =\ \"(.*)\"$ ]] && [ -z "${known[${BASH_REMATCH[1]}]:-}" ]; then
      known[${BASH_REMATCH[1]}]=${BASH_REMATCH[2]}
    fi
  done < <(cat "$pgrx_config" 2>/dev/null || true)
  for v in "${!known[@]}"; do init_flags+=("--pg$v=${known[$v]}"); done
  say "Pointing pgrx at PostgreSQL ${VERSIONS[*]}"
  cargo pgrx init "${init_flags[@]}"
fi

for v in "${VERSIONS[@]}"; do
  say "Building and installing the pgssl extension into PostgreSQL $v"
  install_flags=(--pg-config "${PG_CONFIGS[$v]}")
  # Only Debian's own server needs root; the cache belongs to whoever built it.
  sudo=("${SUDO[@]}")
  [ "$v" = "$PG_MAJOR" ] || sudo=()
  [ "${#sudo[@]}" -eq 0 ] || install_flags+=(--sudo)
  (cd pgssl_ext && cargo pgrx install "${install_flags[@]}")
  # cargo pgrx install copies the upgrade scripts of pgssl_ext/sql/ but not the
  # earlier releases' full install scripts kept there, which CREATE EXTENSION
  # pgssl VERSION '<old>' (and the upgrade test) needs.
  "${sudo[@]}" install -m 0644 pgssl_ext/sql/pgssl--*.sql "$("${PG_CONFIGS[$v]}" --sharedir)/extension/"
done

say "Building the pgssl command and putting it on PATH"
# A link to the workspace's dev build, which the tests share, so no second build.
cargo build --quiet -p pgssl_cli --bin pgssl
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
"${SUDO[@]}" ln -sf "$target_dir/debug/pgssl" /usr/local/bin/pgssl
