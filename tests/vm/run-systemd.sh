#!/usr/bin/env bash
# The Debian package under a real systemd as PID 1: boots Debian's kernel
# under qemu TCG on a Debian 12 root filesystem (debootstrap, minbase plus
# systemd, libyuma-base, wireguard-tools), installs the package there with
# apt and runs tests/vm/systemd/systemd-test.sh: READY=1, the watchdog (a
# wedged core restarted), reload, restart keeping running, stop, remove,
# purge. See tests/vm/README.md.
#
# Usage: tests/vm/run-systemd.sh     (root; installs what it needs with apt)
# Environment:
#   WGNETCONF_DEB          the package to test (default: scripts/build-deb.sh
#                          builds one, with WGNETCONF_DEB_PROFILE)
#   WGNETCONF_DEB_PROFILE  the package's build profile: release (default) or
#                          debug (the test command's); a debug package lets
#                          the test wedge the core with a fault point
#   WGNETCONF_VM_CACHE     kernel, root filesystem cache (default <target dir>/vm)
#   WGNETCONF_VM_MIRROR    Debian mirror for debootstrap (default deb.debian.org)
#   WGNETCONF_VM_TIMEOUT   seconds before the VM is killed (default 1500)
# Prints the serial console; exit status 0 only on `VM TEST: PASS`.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
CACHE=${WGNETCONF_VM_CACHE:-$TARGET_DIR/vm}
TIMEOUT=${WGNETCONF_VM_TIMEOUT:-1500}
MIRROR=${WGNETCONF_VM_MIRROR:-http://deb.debian.org/debian}
PROFILE=${WGNETCONF_DEB_PROFILE:-release}
# What the root filesystem holds besides minbase: systemd as init, the
# package's dependencies (so `apt install ./wgnetconf.deb` needs no network:
# the VM has none) and what the test uses.
INCLUDE=systemd,systemd-sysv,libyuma-base,wireguard-tools,iproute2,kmod,procps

fail() { echo "VM TEST: FAIL: $*" >&2; exit 1; }
log() { echo "vm: $*" >&2; }

[ "$(id -u)" -eq 0 ] || fail "needs root (apt, debootstrap, depmod)"
. "$HERE/lib.sh"

command -v qemu-system-x86_64 >/dev/null || need_packages qemu-system-x86
need_packages busybox debootstrap e2fsprogs cpio kmod zstd xz-utils
fetch_kernel

# --- the package ---------------------------------------------------------------
DEB=${WGNETCONF_DEB:-$(WGNETCONF_DEB_PROFILE=$PROFILE "$ROOT/scripts/build-deb.sh")}
[ -f "$DEB" ] || fail "no package at $DEB"

# --- Debian 12 root filesystem, cached -------------------------------------------
ROOTFS=$CACHE/rootfs-bookworm
if [ "$(cat "$ROOTFS/.wgnetconf-include" 2>/dev/null)" != "$INCLUDE" ]; then
  log "debootstrap bookworm ($INCLUDE) from $MIRROR"
  rm -rf "$ROOTFS" "$ROOTFS.tmp"
  debootstrap --variant=minbase --include="$INCLUDE" bookworm "$ROOTFS.tmp" "$MIRROR" \
    > "$CACHE/debootstrap.log" 2>&1 || fail "debootstrap: $(tail -3 "$CACHE/debootstrap.log")"
  rm -rf "$ROOTFS.tmp"/var/cache/apt/archives/*.deb
  echo "$INCLUDE" > "$ROOTFS.tmp/.wgnetconf-include"
  mv "$ROOTFS.tmp" "$ROOTFS"
fi

# --- this run's root filesystem ----------------------------------------------------
S=$CACHE/systemd-stage
rm -rf "$S"
cp -a "$ROOTFS" "$S"
trap 'rm -rf "$S" "${R:-}"' EXIT
# The kernel's WireGuard module where modprobe (the unit's ExecStartPre)
# finds it; the rest of the kernel's modules are not needed.
copy_modules "$S/lib/modules/$KVER/extra" wireguard
mv "$S/lib/modules/$KVER/extra/order" "$CACHE/wireguard-modules"
for f in modules.order modules.builtin modules.builtin.modinfo; do
  cp "$KROOT/lib/modules/$KVER/$f" "$S/lib/modules/$KVER/"
done
depmod -b "$S" "$KVER"
install -d -m 0700 "$S/root/vmtest"
install -m 0644 "$DEB" "$S/root/vmtest/wgnetconf.deb"
install -m 0755 "$HERE/systemd/systemd-test.sh" "$S/root/vmtest/systemd-test.sh"
echo "$PROFILE" > "$S/root/vmtest/profile"
install -m 0644 "$HERE/systemd/wgnetconf-vmtest.service" "$S/etc/systemd/system/"
ln -sf ../wgnetconf-vmtest.service "$S/etc/systemd/system/multi-user.target.wants/wgnetconf-vmtest.service"
# Nothing on the console but the test (no gettys; there is no udev to
# announce the serial device they wait for), no apt timers.
for u in serial-getty@.service getty@.service console-getty.service apt-daily.timer \
  apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer; do
  ln -sf /dev/null "$S/etc/systemd/system/$u"
done
echo wgnetconf-vm > "$S/etc/hostname"
# The root filesystem is mounted rw by the initramfs; no fstab entry, so
# systemd waits for no device unit (there is no udev).
: > "$S/etc/fstab"
IMG=$CACHE/systemd-root.img
rm -f "$IMG"
mkfs.ext4 -q -F -L root -d "$S" "$IMG" 2G || fail "mkfs.ext4 -d"

# --- initramfs: mount the disk, switch to its systemd -----------------------------
R=$(mktemp -d "${TMPDIR:-/tmp}/wgnetconf-vm-initrd.XXXXXX")
mkdir -p "$R"/{bin,proc,sys,dev,newroot,mods}
install_busybox "$R"
copy_modules "$R/mods" virtio_pci virtio_blk crc32c_generic ext4
install -m 0755 "$HERE/systemd/init" "$R/init"
INITRD=$CACHE/systemd-initramfs.gz
(cd "$R" && find . -print0 | cpio --null -o -H newc --quiet | gzip -1) > "$INITRD"
log "root image $(du -h "$IMG" | cut -f1) (ext4), kernel $KVER, package $(basename "$DEB") ($PROFILE)"

# --- boot ----------------------------------------------------------------------------
boot_vm "$CACHE/systemd-console.log" \
  "console=ttyS0 panic=-1 quiet loglevel=3 systemd.show_status=false" \
  -m 1024 -drive file="$IMG",if=virtio,format=raw
