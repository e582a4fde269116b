#!/usr/bin/env bash
# The kernel backend on a real kernel: boots Debian's own kernel (which has
# the WireGuard module, unlike the build machines') under qemu TCG with an
# initramfs holding the agent, and runs tests/vm/site-to-site.sh inside it:
# the guide's Figure 1 in network namespaces, one agent per site with the
# kernel backend, configured only through NETCONF.
#
# Usage: tests/vm/run.sh            (root; installs what it needs with apt)
# Environment:
#   WGNETCONF_VM_CACHE    kernel + initramfs cache (default: <target dir>/vm)
#   WGNETCONF_VM_PROFILE  cargo profile of the agent: debug (default, the build
#                         scripts/test.sh already made) or release
#   WGNETCONF_VM_TIMEOUT  seconds before the VM is killed (default 900)
#   WGNETCONF_VM_BUILD=0  do not run cargo build (use the binary as it is)
#   WGNETCONF_VM_TRACE=1  run the test in the VM with `set -x`
#   WGNETCONF_VM_BREAK    scratch runs only: break something in the VM test to
#                         see it fail (allowed-ips: the peers' allowed-ips do
#                         not cover the remote site)
# Prints the serial console; the last line is `VM TEST: PASS` or
# `VM TEST: FAIL: <reason>`. Exit status 0 only on PASS.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CACHE=${WGNETCONF_VM_CACHE:-$TARGET_DIR/vm}
PROFILE=${WGNETCONF_VM_PROFILE:-debug}
TIMEOUT=${WGNETCONF_VM_TIMEOUT:-900}
# The IETF modules (libyuma-base): all of them (540K), so the VM follows
# the agent's list of protocol modules (src/schema.rs) without edits here.
IETF_DIR=/usr/share/yuma/modules/ietf

fail() { echo "VM TEST: FAIL: $*" >&2; exit 1; }
log() { echo "vm: $*" >&2; }

[ "$(id -u)" -eq 0 ] || fail "needs root (apt, depmod)"

. "$HERE/lib.sh"

# --- host packages -----------------------------------------------------------
# qemu-system-x86 from bookworm (7.2) replaces the image's backports
# qemu-utils 10.0 (a version conflict, harmless here). Debian's dynamic
# busybox (its libraries are copied), not busybox-static: that one's shell
# prefers its own applets to programs, so `ip netns exec` would run
# busybox's ip instead of the real iproute2 copied below.
command -v qemu-system-x86_64 >/dev/null || need_packages qemu-system-x86
need_packages busybox
need_packages cpio kmod wireguard-tools iproute2 libyuma-base zstd xz-utils

# --- Debian's kernel, extracted, not installed -------------------------------
fetch_kernel

# --- the agent ---------------------------------------------------------------
if [ "${WGNETCONF_VM_BUILD:-1}" != 0 ]; then
  flag=(); [ "$PROFILE" = release ] && flag=(--release)
  log "cargo build ${flag[*]} --bin wgnetconf"
  (cd "$ROOT" && cargo build -q "${flag[@]}" --bin wgnetconf) || fail "cargo build"
fi
AGENT=$TARGET_DIR/$PROFILE/wgnetconf
[ -x "$AGENT" ] || fail "no agent binary at $AGENT"

# --- initramfs ---------------------------------------------------------------
R=$(mktemp -d "${TMPDIR:-/tmp}/wgnetconf-vm.XXXXXX")
trap 'rm -rf "$R"' EXIT
mkdir -p "$R"/{bin,lib,lib64,proc,sys,dev,run,tmp,etc,mods,var/lib,test}
ln -s ../run "$R/var/run"
echo "root:x:0:0:root:/root:/bin/sh" > "$R/etc/passwd"
echo "root:x:0:" > "$R/etc/group"

install_busybox "$R" ip wg
# The real iproute2 (netns, wireguard links); busybox's ip applet has neither.
copy_bin "$R" "$(command -v ip)" ip
copy_bin "$R" "$(command -v wg)" wg
copy_bin "$R" "$AGENT" wgnetconf

# WireGuard and veth with their dependencies, in load order.
copy_modules "$R/mods" wireguard veth
grep -qx wireguard.ko "$R/mods/order" || fail "no wireguard.ko in $PKG"

# YANG: the IETF modules where the agent looks for them, ours where an
# installed agent looks for them.
mkdir -p "$R$IETF_DIR" "$R/usr/share/wgnetconf/yang"
ls "$IETF_DIR"/ietf-netconf@*.yang >/dev/null 2>&1 || fail "no ietf-netconf in $IETF_DIR (libyuma-base)"
cp "$IETF_DIR"/*.yang "$R$IETF_DIR/"
cp "$ROOT"/yang/*.yang "$R/usr/share/wgnetconf/yang/"

install -m755 "$HERE/init" "$R/init"
install -m755 "$HERE/site-to-site.sh" "$R/test/site-to-site.sh"
[ -n "${WGNETCONF_VM_BREAK:-}" ] && echo "$WGNETCONF_VM_BREAK" > "$R/test/break"
[ "${WGNETCONF_VM_TRACE:-0}" = 1 ] && touch "$R/test/trace"
INITRD=$CACHE/initramfs.gz
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$INITRD"
log "initramfs $(du -h "$INITRD" | cut -f1), kernel $KVER, modules: $(tr '\n' ' ' < "$R/mods/order")"

# --- boot --------------------------------------------------------------------
boot_vm "$CACHE/console.log" "console=ttyS0 panic=-1 quiet loglevel=3" -m 512
