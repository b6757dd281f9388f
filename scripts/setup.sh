#!/usr/bin/env bash
# One-time set-up on Debian 12, safe to run again: installs what is missing
# (Debian packages, cargo-pgrx 0.18.1), points pgrx at PostgreSQL 15, and
# builds and installs the pgssl extension into PostgreSQL 15.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_MAJOR=15
PG_CONFIG=/usr/lib/postgresql/$PG_MAJOR/bin/pg_config
PGRX_VERSION=0.18.1
PACKAGES=(
  "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR"
  libclang-dev clang pkg-config libssl-dev libkrb5-dev openssl sudo
  faketime  # libfaketime: tests move a server's clock
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

if ! grep -qs "pg$PG_MAJOR = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
  say "Pointing pgrx at PostgreSQL $PG_MAJOR"
  cargo pgrx init --pg$PG_MAJOR="$PG_CONFIG"
fi

say "Building and installing the pgssl extension into PostgreSQL $PG_MAJOR"
install_flags=(--pg-config "$PG_CONFIG")
[ "${#SUDO[@]}" -eq 0 ] || install_flags+=(--sudo)
(cd pgssl_ext && cargo pgrx install "${install_flags[@]}")

say "Building the pgssl command and putting it on PATH"
# A link to the workspace's dev build, which the tests share, so no second build.
cargo build --quiet -p pgssl_cli --bin pgssl
target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
"${SUDO[@]}" ln -sf "$target_dir/debug/pgssl" /usr/local/bin/pgssl
