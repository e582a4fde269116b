#!/usr/bin/env bash
# Builds the Debian package wgnetconf_<version>_<arch>.deb from the
# repository with dpkg-deb (no debhelper): the binary, the unit, the
# configuration as a conffile, the YANG modules, the man pages and shell
# completions generated from the clap definitions, debian/copyright
# generated from Cargo.lock, the maintainer scripts. Prints the .deb's path.
#
# Usage: scripts/build-deb.sh [OUTDIR]      (default OUTDIR: <target dir>/deb)
# Environment:
#   WGNETCONF_DEB_PROFILE  cargo profile: release (default, what is shipped)
#                          or debug (the test command's, to skip a second
#                          full build; same files, a bigger and slower binary)
#   WGNETCONF_DEB_BUILD=0  package the binary as it is (no cargo build)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${1:-$TARGET_DIR/deb}
PROFILE=${WGNETCONF_DEB_PROFILE:-release}
P=packaging/deb

fail() { echo "build-deb: $*" >&2; exit 1; }
for tool in dpkg-deb dpkg-shlibdeps python3 strip gzip; do
  command -v "$tool" >/dev/null || fail "needs $tool (scripts/install-deps.sh installs it)"
done

if [ "${WGNETCONF_DEB_BUILD:-1}" != 0 ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  cargo build -q --locked "${flag[@]}" --bin wgnetconf >&2 || fail "cargo build"
fi
BIN=$TARGET_DIR/$PROFILE/wgnetconf
[ -x "$BIN" ] || fail "no binary at $BIN"

VERSION=$(cargo metadata --format-version 1 --no-deps --locked |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="wgnetconf"))')
DEB_VERSION=$VERSION-1
ARCH=$(dpkg --print-architecture)
NAME=wgnetconf_${DEB_VERSION}_$ARCH
mkdir -p "$OUT"
STAGE=$(mktemp -d "$OUT/.stage.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT
R=$STAGE/$NAME
# Modes are set explicitly below: the umask of whoever builds must not leak
# into the package.
umask 022

# --- files -------------------------------------------------------------------
install -D -m 0755 "$BIN" "$R/usr/bin/wgnetconf"
strip --strip-unneeded "$R/usr/bin/wgnetconf"
install -D -m 0644 "$P/wgnetconf.service" "$R/lib/systemd/system/wgnetconf.service"
# The example configuration is the shipped one: its defaults are the safe
# ones (generated admin password in a 0600 file, no default password).
install -D -m 0644 wgnetconf.example.toml "$R/etc/wgnetconf/wgnetconf.toml"
install -D -m 0644 "$P/sshd-wgnetconf.conf" "$R/etc/ssh/sshd_config.d/wgnetconf.conf"
install -d -m 0755 "$R/usr/share/wgnetconf/yang"
install -m 0644 yang/*.yang "$R/usr/share/wgnetconf/yang/"
# State: 0700 (the unit's StateDirectoryMode says the same).
install -d -m 0700 "$R/var/lib/wgnetconf"

DOCS=$STAGE/docs
"$R/usr/bin/wgnetconf" generate-docs "$DOCS" || fail "wgnetconf generate-docs"
install -d -m 0755 "$R/usr/share/man/man1"
for m in "$DOCS"/man1/*.1; do
  gzip -9n < "$m" > "$R/usr/share/man/man1/$(basename "$m").gz"
  chmod 0644 "$R/usr/share/man/man1/$(basename "$m").gz"
done
install -D -m 0644 "$DOCS/completions/wgnetconf.bash" "$R/usr/share/bash-completion/completions/wgnetconf"
install -D -m 0644 "$DOCS/completions/_wgnetconf" "$R/usr/share/zsh/vendor-completions/_wgnetconf"
install -D -m 0644 "$DOCS/completions/wgnetconf.fish" "$R/usr/share/fish/vendor_completions.d/wgnetconf.fish"

DOC=$R/usr/share/doc/wgnetconf
install -d -m 0755 "$DOC"
cargo metadata --format-version 1 --locked --filter-platform "$(rustc -vV | sed -n 's/^host: //p')" |
  python3 "$P/copyright.py" > "$DOC/copyright" || fail "copyright"
chmod 0644 "$DOC/copyright"
gzip -9n < README.md > "$DOC/README.md.gz"
chmod 0644 "$DOC/README.md.gz"
{
  echo "wgnetconf ($DEB_VERSION) unstable; urgency=medium"
  echo
  echo "  * Built from the repository at $(git rev-parse --short HEAD 2>/dev/null || echo unknown)."
  echo
  echo " -- wgnetconf developers <wgnetconf@localhost>  $(date -R -d "@${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}")"
} | gzip -9n > "$DOC/changelog.Debian.gz"
chmod 0644 "$DOC/changelog.Debian.gz"

# --- control -----------------------------------------------------------------
install -d -m 0755 "$R/DEBIAN"
for s in postinst prerm postrm; do install -m 0755 "$P/$s" "$R/DEBIAN/$s"; done
printf '%s\n' /etc/wgnetconf/wgnetconf.toml /etc/ssh/sshd_config.d/wgnetconf.conf > "$R/DEBIAN/conffiles"
chmod 0644 "$R/DEBIAN/conffiles"
# The shared libraries the binary links (libc, libgcc_s, libpcre2-8 for the
# bundled libyang), as dpkg-shlibdeps finds them; it wants a debian/control.
SHL=$STAGE/shlibs
mkdir -p "$SHL/debian"
printf 'Source: wgnetconf\n\nPackage: wgnetconf\nArchitecture: any\n' > "$SHL/debian/control"
SHLIBS=$(cd "$SHL" && dpkg-shlibdeps -O "$R/usr/bin/wgnetconf" 2>/dev/null | sed -n 's/^shlibs:Depends=//p')
[ -n "$SHLIBS" ] || fail "dpkg-shlibdeps found no dependencies"
SIZE=$(du -sk --exclude=DEBIAN "$R" | cut -f1)
sed -e "s/@VERSION@/$DEB_VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" \
  -e "s/@SHLIBS@/$SHLIBS/" "$P/control.in" > "$R/DEBIAN/control"
(cd "$R" && find . -type f ! -path './DEBIAN/*' -printf '%P\0' | sort -z | xargs -0 md5sum) > "$R/DEBIAN/md5sums"
chmod 0644 "$R/DEBIAN/control" "$R/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zxz --build "$R" "$OUT/$NAME.deb" >&2 || fail "dpkg-deb --build"
echo "$OUT/$NAME.deb"
