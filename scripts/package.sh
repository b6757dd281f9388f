#!/usr/bin/env bash
# Builds the Debian packages, from a clean checkout, into target/debian/:
#
#   postgresql-NN-pgssl  the extension for PostgreSQL NN, laid out as Debian's
#                        PostgreSQL extension packages are (/usr/lib/postgresql/NN/lib,
#                        /usr/share/postgresql/NN/extension, upgrade scripts included)
#   pgssl                the pgssl command in /usr/bin, with its manual page and
#                        bash, zsh and fish completions
#
#   scripts/package.sh [NN]      # NN: the PostgreSQL major, default 15
#
# The extension files come from `cargo pgrx package`; dpkg-deb builds each
# package from a staged tree, and dpkg-shlibdeps computes the shared library
# dependencies of the binaries. The maintainer is $DEBFULLNAME <$DEBEMAIL>
# when set, else the author of the last commit. PGSSL_PACKAGE_PROFILE=dev
# builds unoptimized binaries, which is quicker (for tests of the packaging
# itself); the default is the release profile.
set -euo pipefail
cd "$(dirname "$0")/.."

major=${1:-15}
profile=${PGSSL_PACKAGE_PROFILE:-release}
case "$profile" in
  release) cargo_profile=(--release) pgrx_profile=() profile_dir=release ;;
  dev) cargo_profile=() pgrx_profile=(--debug) profile_dir=debug ;;
  *)
    echo "$0: PGSSL_PACKAGE_PROFILE must be release or dev" >&2
    exit 2
    ;;
esac
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
umask 022

# The Debian tools this needs (dpkg-shlibdeps is in dpkg-dev, strip in binutils).
missing=()
for tool in dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev strip:binutils; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
  say "Installing Debian packages: ${missing[*]}"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ -x scripts/pg.sh ]; then
  pg_config=$(scripts/pg.sh "$major")
else
  pg_config=/usr/lib/postgresql/$major/bin/pg_config
fi
if [ ! -x "$pg_config" ]; then
  echo "$0: no pg_config for PostgreSQL $major ($pg_config)" >&2
  exit 1
fi
if ! "$pg_config" --version | grep -q "^PostgreSQL $major[.a-z]"; then
  echo "$0: $pg_config is not PostgreSQL $major: $("$pg_config" --version)" >&2
  exit 1
fi

target_dir=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out=$target_dir/debian
# Staged as debhelper stages: debian/<package>/ under a folder with a
# debian/control, which dpkg-shlibdeps reads.
work=$target_dir/debian/build
rm -rf "$work"
mkdir -p "$out" "$work/debian"
printf 'Source: pgssl\n\nPackage: pgssl\nArchitecture: any\n' > "$work/debian/control"

version_of() { cargo pkgid -p "$1" | sed 's/.*[#@]//'; }
ext_version=$(version_of pgssl_ext)
cli_version=$(version_of pgssl_cli)
arch=$(dpkg --print-architecture)
maintainer="${DEBFULLNAME:-$(git log -1 --format=%an)} <${DEBEMAIL:-$(git log -1 --format=%ae)}>"
# Dates are the last commit's (the changelog's, every file's), so the same
# commit makes the same packages.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}
date=$(date -R -u -d "@$SOURCE_DATE_EPOCH")
commit=$(git rev-parse --short=12 HEAD)

# Writes DEBIAN/control (fields on stdin), md5sums, the copyright and
# changelog.Debian.gz for package $2 of version $3 staged in $1, then builds it.
build_deb() {
  local root=$1 package=$2 version=$3 doc
  doc=$root/usr/share/doc/$package
  mkdir -p "$doc" "$root/DEBIAN"
  {
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: pgssl"
    echo
    echo "Files: *"
    echo "Copyright: $(sed -n 's/^Copyright (c) //p' LICENSE)"
    echo "License: PostgreSQL"
    sed -n '/^Permission to use/,$p' LICENSE | sed 's/^$/./; s/^/ /'
  } > "$doc/copyright"
  {
    echo "$package ($version) unstable; urgency=medium"
    echo
    echo "  * Built by scripts/package.sh from commit $commit."
    echo
    echo " -- $maintainer  $date"
  } | gzip -9n > "$doc/changelog.Debian.gz"
  {
    echo "Package: $package"
    echo "Version: $version"
    echo "Architecture: $arch"
    echo "Maintainer: $maintainer"
    echo "Installed-Size: $(du -sk --exclude=DEBIAN "$root" | cut -f1)"
    cat
  } > "$root/DEBIAN/control"
  (cd "$root" && find usr -type f -print0 | sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -exec touch --no-dereference -d "@$SOURCE_DATE_EPOCH" {} +
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  dpkg-deb --root-owner-group -Zxz --build "$root" "$out/${package}_${version}_$arch.deb" >/dev/null
  say "Built $out/${package}_${version}_$arch.deb"
}

# The Depends of the ELF files given, as dpkg-shlibdeps computes them.
shlib_depends() {
  # --warnings=0: the extension's references to the server's own symbols
  # (resolved from the postgres binary at load time) are expected.
  (cd "$work" && dpkg-shlibdeps --warnings=0 -O "$@") | sed -n 's/^shlibs:Depends=//p'
}

strip_elf() { strip --strip-unneeded --remove-section=.comment --remove-section=.note "$@"; }

say "Building the extension for PostgreSQL $major ($profile profile)"
pgrx_out=$work/pgrx
(cd pgssl_ext && cargo pgrx package --pg-config "$pg_config" "${pgrx_profile[@]}" --out-dir "$pgrx_out")
ext_package=postgresql-$major-pgssl
ext_root=$work/debian/$ext_package
lib_dir=$ext_root/usr/lib/postgresql/$major/lib
ext_dir=$ext_root/usr/share/postgresql/$major/extension
mkdir -p "$lib_dir" "$ext_dir"
# pg_config's folders may be anywhere (a PostgreSQL built from source); the
# package puts the files where Debian's postgresql-NN has its own.
install -m 0644 "$pgrx_out$("$pg_config" --pkglibdir)/pgssl.so" "$lib_dir/"
install -m 0644 "$pgrx_out$("$pg_config" --sharedir)"/extension/pgssl* "$ext_dir/"
# cargo pgrx copies the upgrade scripts but not the earlier releases' frozen
# install scripts kept next to them, which CREATE EXTENSION pgssl VERSION
# '<old>' needs.
install -m 0644 pgssl_ext/sql/pgssl--*.sql "$ext_dir/"
strip_elf "$lib_dir/pgssl.so"
ls "$ext_dir" >&2
build_deb "$ext_root" "$ext_package" "$ext_version-1" <<EOF
Depends: postgresql-$major, $(shlib_depends "$lib_dir/pgssl.so")
Section: database
Priority: optional
Description: TLS introspection and a client certificate authority for PostgreSQL $major
 The pgssl extension (CREATE EXTENSION pgssl) reports the TLS state of a
 session completely: protocol, cipher, the client certificate's full subject
 and issuer, serial, validity, fingerprint and extensions.
 .
 It also runs a certificate authority inside the database: users enroll for a
 client certificate for their own role and renew it over a login with it,
 administrators revoke certificates
 and publish CRLs, and the server's own TLS set-up is audited and its
 certificate rotated from SQL.
 .
 This package is built for PostgreSQL $major; upgrade an installed extension
 with ALTER EXTENSION pgssl UPDATE.
EOF

say "Building the pgssl command ($profile profile)"
cargo build --locked "${cargo_profile[@]}" -p pgssl_cli --bin pgssl
cli_root=$work/debian/pgssl
bin=$target_dir/$profile_dir/pgssl
install -D -m 0755 "$bin" "$cli_root/usr/bin/pgssl"
strip_elf "$cli_root/usr/bin/pgssl"
mkdir -p "$cli_root/usr/share/man/man1" "$cli_root/usr/share/bash-completion/completions" \
  "$cli_root/usr/share/zsh/vendor-completions" "$cli_root/usr/share/fish/vendor_completions.d"
"$bin" manpage | gzip -9n > "$cli_root/usr/share/man/man1/pgssl.1.gz"
"$bin" completions bash > "$cli_root/usr/share/bash-completion/completions/pgssl"
"$bin" completions zsh > "$cli_root/usr/share/zsh/vendor-completions/_pgssl"
"$bin" completions fish > "$cli_root/usr/share/fish/vendor_completions.d/pgssl.fish"
chmod 0644 "$cli_root"/usr/share/man/man1/* "$cli_root"/usr/share/*/*completion*/*
build_deb "$cli_root" pgssl "$cli_version-1" <<EOF
Depends: $(shlib_depends "$cli_root/usr/bin/pgssl")
Suggests: $ext_package
Section: database
Priority: optional
Description: check and set up TLS connections to PostgreSQL the way libpq does
 The pgssl command connects with libpq's exact sslmode semantics (the same
 connection strings, environment variables and ~/.postgresql files as psql)
 and shows how a connection is secured, from both ends (pgssl check).
 .
 With the pgssl extension in the database it also obtains a client
 certificate from the database's own CA (pgssl enroll) and keeps it renewed
 (pgssl renew, --daemon for short-lived certificates), turns TLS on for a
 cluster and rotates the server certificate (pgssl setup), and audits a
 server's TLS set-up (pgssl report).
EOF
