#!/usr/bin/env bash
# Builds the Debian package (scripts/build-deb.sh) and checks what is in it:
# files and their modes, the conffiles, the control fields, the maintainer
# scripts, the unit (its directives and `systemd-analyze security` under the
# exposure threshold), the man pages and completions (generated from the
# clap definitions), and debian/copyright against `cargo tree` (every
# statically linked crate named, libyang's BSD-3-Clause). Installing it on a
# real systemd is tests/vm's job. Exit status 0 only if every check passes.
#
# Environment: as scripts/build-deb.sh (WGNETCONF_DEB_PROFILE, _BUILD);
#   WGNETCONF_DEB         check this .deb instead of building one
#   WGNETCONF_EXPOSURE    highest accepted systemd-analyze exposure, in
#                         tenths (default 30: 3.0, "OK"; the unit scores 2.4)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
THRESHOLD=${WGNETCONF_EXPOSURE:-30}
errors=0
bad() { echo "check-deb: FAIL: $*" >&2; errors=$((errors + 1)); }
ok() { echo "check-deb: ok: $*"; }

command -v systemd-analyze >/dev/null || { echo "check-deb: FAIL: needs systemd-analyze (package systemd)" >&2; exit 1; }
DEB=${WGNETCONF_DEB:-$(scripts/build-deb.sh)}
[ -f "$DEB" ] || { echo "check-deb: FAIL: no package at $DEB" >&2; exit 1; }
echo "check-deb: $DEB"
X=$(mktemp -d "${TMPDIR:-/tmp}/wgnetconf-deb.XXXXXX")
trap 'rm -rf "$X"' EXIT
dpkg-deb -R "$DEB" "$X/root"

# --- files and modes (as dpkg will install them) ------------------------------
LIST=$X/list
dpkg-deb -c "$DEB" | awk '{print $1, $2, $6}' > "$LIST"
expect() { # mode path
  local line
  line=$(awk -v p="./${2#/}" '$3 == p || $3 == p"/" {print $1, $2}' "$LIST")
  if [ -z "$line" ]; then bad "$2 is not in the package"; return; fi
  [ "$line" = "$1 root/root" ] || bad "$2 is '$line', want '$1 root/root'"
}
expect -rwxr-xr-x /usr/bin/wgnetconf
expect -rw-r--r-- /lib/systemd/system/wgnetconf.service
expect -rw-r--r-- /etc/wgnetconf/wgnetconf.toml
expect -rw-r--r-- /etc/ssh/sshd_config.d/wgnetconf.conf
expect drwx------ /var/lib/wgnetconf
expect drwxr-xr-x /usr/share/wgnetconf/yang
for y in yang/*.yang; do expect -rw-r--r-- "/usr/share/wgnetconf/yang/$(basename "$y")"; done
expect -rw-r--r-- /usr/share/doc/wgnetconf/copyright
expect -rw-r--r-- /usr/share/man/man1/wgnetconf.1.gz
expect -rw-r--r-- /usr/share/bash-completion/completions/wgnetconf
expect -rw-r--r-- /usr/share/zsh/vendor-completions/_wgnetconf
expect -rw-r--r-- /usr/share/fish/vendor_completions.d/wgnetconf.fish
# The run directory is the unit's (RuntimeDirectory=), never the package's.
grep -q ' \./run/' "$LIST" && bad "the package ships files under /run"
# Nothing world-writable, nothing setuid.
awk '$1 ~ /^.{8}w/ || $1 ~ /[sS]/ {print}' "$LIST" | grep -q . && bad "world-writable or setuid entries"
ok "files and modes"

# --- control ------------------------------------------------------------------
C=$X/root/DEBIAN
diff <(sort "$C/conffiles") <(printf '%s\n' /etc/ssh/sshd_config.d/wgnetconf.conf /etc/wgnetconf/wgnetconf.toml) >/dev/null ||
  bad "conffiles are: $(tr '\n' ' ' < "$C/conffiles")"
field() { dpkg-deb -f "$DEB" "$1"; }
[ "$(field Package)" = wgnetconf ] || bad "Package: $(field Package)"
field Depends | grep -qw libyuma-base || bad "Depends lacks libyuma-base: $(field Depends)"
field Depends | grep -qw libc6 || bad "Depends lacks libc6 (dpkg-shlibdeps): $(field Depends)"
field Recommends | grep -qw wireguard-tools || bad "Recommends lacks wireguard-tools"
for s in postinst prerm postrm; do
  [ -x "$C/$s" ] || { bad "DEBIAN/$s missing or not executable"; continue; }
  sh -n "$C/$s" || bad "DEBIAN/$s: syntax"
done
grep -q 'deb-systemd-invoke stop' "$C/prerm" || bad "prerm does not stop the service on remove"
grep -q 'rm -rf /var/lib/wgnetconf' "$C/postrm" || bad "postrm does not remove the state on purge"
(cd "$X/root" && md5sum --quiet -c DEBIAN/md5sums) || bad "md5sums"
ok "control, conffiles, maintainer scripts"

# --- the unit -----------------------------------------------------------------
U=$X/root/lib/systemd/system/wgnetconf.service
for d in 'Type=notify' 'NotifyAccess=main' 'ExecStartPre=-+/sbin/modprobe wireguard' \
  'ExecStart=/usr/bin/wgnetconf serve --config /etc/wgnetconf/wgnetconf.toml' \
  'ExecReload=/usr/bin/wgnetconf reload --config /etc/wgnetconf/wgnetconf.toml --pid $MAINPID' \
  'Restart=on-failure' 'StateDirectory=wgnetconf' 'StateDirectoryMode=0700' \
  'RuntimeDirectory=wgnetconf' 'RuntimeDirectoryMode=0755' 'RuntimeDirectoryPreserve=yes' \
  'NoNewPrivileges=yes' 'ProtectSystem=strict' 'PrivateTmp=yes' 'ProtectHome=read-only' \
  'CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_SYS_NICE' \
  'SystemCallFilter=@system-service'; do
  grep -qxF "$d" "$U" || bad "unit lacks $d"
done
grep -q '^WatchdogSec=[1-9]' "$U" || bad "unit has no WatchdogSec"
grep '^ReadWritePaths=' "$U" | grep -q -- '-/run/wireguard' || bad "ReadWritePaths lacks -/run/wireguard"
exposure=$(systemd-analyze security --offline=yes "$U" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
if systemd-analyze security --offline=yes --threshold="$THRESHOLD" "$U" >/dev/null 2>&1; then
  ok "unit directives; systemd-analyze security exposure $exposure (threshold $THRESHOLD/10)"
else
  bad "systemd-analyze security: exposure ${exposure:-?} above $THRESHOLD/10"
fi

# --- the sshd drop-in ----------------------------------------------------------
# Shipped commented out; uncommented, sshd must accept it and serve NETCONF
# on 830 through the relay while keeping port 22.
DROPIN=$X/root/etc/ssh/sshd_config.d/wgnetconf.conf
grep -v '^[[:space:]]*#' "$DROPIN" | grep -q . && bad "the sshd drop-in is not all commented out"
SSHD=$(command -v sshd || echo /usr/sbin/sshd)
if [ -x "$SSHD" ]; then
  sed -n 's/^#\(Port \|Subsystem \)/\1/p' "$DROPIN" > "$X/sshd-dropin.conf"
  ssh-keygen -q -t ed25519 -N '' -f "$X/hostkey"
  printf 'Include %s\nHostKey %s\n' "$X/sshd-dropin.conf" "$X/hostkey" > "$X/sshd_config"
  T=$("$SSHD" -T -f "$X/sshd_config" 2>&1) || bad "sshd refuses the uncommented drop-in: $T"
  echo "$T" | grep -qx 'port 22' || bad "with the drop-in sshd no longer listens on port 22"
  echo "$T" | grep -qx 'port 830' || bad "with the drop-in sshd does not listen on port 830"
  echo "$T" | grep -qx 'subsystem netconf /usr/bin/wgnetconf relay --socket /run/wgnetconf/netconf.sock' ||
    bad "with the drop-in sshd has no netconf subsystem running the relay"
  ok "sshd drop-in: commented out; uncommented, sshd -T shows ports 22 and 830 and the relay"
else
  bad "no sshd to check the drop-in with (openssh-server)"
fi

# --- man pages and completions -----------------------------------------------
BIN=$X/root/usr/bin/wgnetconf
"$BIN" --version | grep -q '^wgnetconf ' || bad "the packaged binary does not run"
# One page per visible subcommand, each a real roff page naming itself.
subs=$("$BIN" --help | awk '/^Commands:/{f=1;next} f&&/^  [a-z]/{print $1}' | grep -vx help)
[ -n "$subs" ] || bad "no subcommands in --help"
for s in $subs; do
  page=$X/root/usr/share/man/man1/wgnetconf-$s.1.gz
  [ -f "$page" ] || { bad "no man page for $s"; continue; }
  zcat "$page" | grep -q "^\.TH wgnetconf-$s 1" || bad "man page of $s has no .TH"
  grep -qw "$s" "$X/root/usr/share/bash-completion/completions/wgnetconf" || bad "bash completion lacks $s"
done
grep -q 'generate-docs' "$X/root/usr/share/bash-completion/completions/wgnetconf" &&
  bad "the hidden generate-docs command is in the completions"
zcat "$X/root/usr/share/man/man1/wgnetconf.1.gz" | grep -q 'wgnetconf\\-reload(1)' || bad "wgnetconf(1) does not list reload"
ok "man pages and completions for: $(echo $subs)"

# --- copyright ----------------------------------------------------------------
CR=$X/root/usr/share/doc/wgnetconf/copyright
head -1 "$CR" | grep -q '^Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/' || bad "copyright is not DEP-5"
HOST=$(rustc -vV | sed -n 's/^host: //p')
# cargo tree, independently of the generator: the crates linked into the
# binary (normal edges, no proc-macros, this target).
crates=$(cargo tree -q --locked -p wgnetconf -e normal,no-proc-macro --target "$HOST" --prefix none -f '{p}' |
  awk '{sub(/^v/, "", $2); print $1" "$2}' | sort -u)
n=0
while read -r name version; do
  n=$((n + 1))
  grep -qxF "Comment: crate $name $version" "$CR" || bad "copyright lacks crate $name $version"
done <<< "$crates"
grep -q 'Comment: libyang, compiled and statically linked' "$CR" || bad "copyright lacks libyang"
awk '/^Files: cargo-registry\/libyang5-sys-\*\/libyang/{f=1} f&&/^License:/{print; exit}' "$CR" | grep -qx 'License: BSD-3-Clause' ||
  bad "libyang is not BSD-3-Clause in copyright"
# Every license named in a Files paragraph has its own License paragraph.
for id in $(awk '/^Files:/{f=1} /^$/{f=0} f&&/^License:/{sub(/^License: /,""); print}' "$CR" |
  tr -s '()' '  ' | tr ' ' '\n' | grep -v -e '^$' -e '^OR$' -e '^AND$' -e '^WITH$' | sort -u); do
  grep -qx "License: $id" "$CR" || bad "copyright has no License paragraph for $id"
done
ok "copyright: $n crates from cargo tree, libyang"

if [ "$errors" -gt 0 ]; then
  echo "check-deb: $errors check(s) failed" >&2
  exit 1
fi
echo "check-deb: PASS"
