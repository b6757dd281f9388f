#!/usr/bin/env bash
# Prints the path of PostgreSQL NN's pg_config, for NN in 13, 15, 17, 18.
#
#   scripts/pg.sh 18            # builds 18 once, then prints its pg_config at once
#
# 15 is Debian 12's own server (installed by scripts/setup.sh). The other
# releases are not packaged for Debian 12, so the first run builds each from
# Debian's source package (postgresql-13 from bullseye, postgresql-17 from
# trixie, postgresql-18 from sid) with OpenSSL, ICU, readline and zlib, and
# installs it with its server headers and contrib/sslinfo into a cache folder
# outside the checkout, ${PGSSL_PG_CACHE:-/var/cache/pgssl/pg}/NN, which later
# runs and other clones reuse.
#
# The machine's own apt sources are never changed: the source package is
# fetched through a list and state folder of this script's own, and apt checks
# it as it checks any download (the suite's signed Release file, then each
# file's checksum). The build runs in a temporary folder next to the cache and
# is renamed into place only once installed, so a half-finished build never
# counts; a lock lets concurrent runs wait for one build rather than race.
#
# When the release a suite's index names is not in the archive (the index can
# run ahead of the files: trixie's postgresql-17 17.12 has been listed without
# its files), the script takes the previous release of that package straight
# from the archive's pool instead, checked against the .dsc checksum pinned
# below; dpkg-source then checks the tarballs against the .dsc.
# Build output goes to NN.log in the cache folder; only the path goes to stdout.
set -euo pipefail

major=${1:-}
case "$major" in
  13) suite=bullseye ;;
  15) suite= ;;
  17) suite=trixie ;;
  18) suite=sid ;;
  *)
    echo "usage: $0 13|15|17|18" >&2
    exit 2
    ;;
esac

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

if [ -z "$suite" ]; then
  pg_config=/usr/lib/postgresql/15/bin/pg_config
  if [ ! -x "$pg_config" ]; then
    echo "$0: PostgreSQL 15 is not installed; scripts/setup.sh installs it" >&2
    exit 1
  fi
  echo "$pg_config"
  exit 0
fi

cache=${PGSSL_PG_CACHE:-/var/cache/pgssl/pg}
prefix=$cache/$major
done_stamp=$prefix/.pgssl-build-done

if [ -e "$done_stamp" ]; then
  echo "$prefix/bin/pg_config"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
"${SUDO[@]}" mkdir -p "$cache"
"${SUDO[@]}" chown "$(id -u):$(id -g)" "$cache"

exec 9>"$cache/.$major.lock"
flock 9
# Another run may have finished the build while this one waited.
if [ -e "$done_stamp" ]; then
  echo "$prefix/bin/pg_config"
  exit 0
fi

build_deps=(
  bison flex build-essential dpkg-dev pkg-config perl xz-utils curl
  libicu-dev libreadline-dev zlib1g-dev libssl-dev
)
missing=()
for pkg in "${build_deps[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  say "Installing build dependencies: ${missing[*]}"
  "${SUDO[@]}" apt-get update -qq >&2
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

work=$(mktemp -d "$cache/.build-$major.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$cache/$major.log
: >"$log"

say "Fetching postgresql-$major from Debian $suite (log: $log)"
mkdir -p "$work/apt/lists/partial" "$work/src"
# apt downloads as its own unprivileged user where it can.
chmod 0755 "$work"
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$work/src"; fi
printf 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
  "$suite" >"$work/apt/sources.list"
apt_opts=(
  -o "Dir::Etc::SourceList=$work/apt/sources.list"
  -o Dir::Etc::SourceParts=/dev/null
  -o "Dir::State::Lists=$work/apt/lists"
  # The machine's package caches stay as they are.
  -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache=
)
apt-get "${apt_opts[@]}" update >>"$log" 2>&1 || {
  tail -20 "$log" >&2
  exit 1
}
# A release of postgresql-NN kept in Debian's pool, and its .dsc's SHA-256,
# for when the suite's index names files that the archive does not serve.
pinned_release() {
  case "$1" in
    17) echo "17.11-0+deb13u1 bf148ae423a982707c3f60672c3a072ef62b701bd9f5df847d9f4b8c9b3e3b18" ;;
    *) return 1 ;;
  esac
}

# Fetches the pinned release's .dsc and the files it names from the pool.
fetch_pinned() {
  local version sha pool dsc file
  read -r version sha < <(pinned_release "$major") || return 1
  pool=http://deb.debian.org/debian/pool/main/p/postgresql-$major
  dsc=postgresql-${major}_$version.dsc
  say "Debian $suite's current postgresql-$major is not served; fetching $version from the pool"
  curl -fsS --retry 3 -o "$work/src/$dsc" "$pool/${dsc//+/%2B}" || return 1
  echo "$sha  $work/src/$dsc" | sha256sum --check --quiet - || return 1
  for file in $(awk '/^Files:/ {f=1; next} /^[^ ]/ {f=0} f {print $3}' "$work/src/$dsc"); do
    curl -fsS --retry 3 -o "$work/src/$file" "$pool/${file//+/%2B}" || return 1
  done
}

(cd "$work/src" && apt-get "${apt_opts[@]}" source --download-only "postgresql-$major") >>"$log" 2>&1 ||
  { rm -f "$work"/src/postgresql-"$major"_*; fetch_pinned >>"$log" 2>&1; } || {
  tail -20 "$log" >&2
  echo "$0: could not download Debian $suite's postgresql-$major source package (apt's error above)" >&2
  exit 1
}

# The upstream release as PostgreSQL publishes it: Debian's patches move
# directories and sockets to Debian's layout, which a private prefix does not want.
dsc=$(ls "$work"/src/postgresql-"$major"_*.dsc)
# dpkg-source checks each file against the checksums the .dsc lists.
dpkg-source --skip-patches -x "$dsc" "$work/src/tree" >>"$log" 2>&1
version=$(sed -n 's/^Version: \([0-9.]*\).*/\1/p' "$dsc")

say "Building PostgreSQL $version with OpenSSL into $prefix (a few minutes)"
stage=$work/stage
(
  cd "$work/src/tree"
  ./configure --prefix="$prefix" --with-openssl --with-icu --with-readline --with-zlib \
    --without-llvm --without-perl --without-python --without-tcl
  make -j"$(nproc)"
  make -C contrib/sslinfo
  make install DESTDIR="$stage"
  make -C contrib/sslinfo install DESTDIR="$stage"
) >>"$log" 2>&1 || {
  tail -40 "$log" >&2
  exit 1
}

printf 'PostgreSQL %s from Debian %s postgresql-%s\n' "$version" "$suite" "$major" >"$stage$prefix/.pgssl-build-done"
chmod -R a+rX "$stage$prefix"
rm -rf "$prefix"
mv "$stage$prefix" "$prefix"
say "PostgreSQL $version installed in $prefix"
echo "$prefix/bin/pg_config"
