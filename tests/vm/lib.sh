# Shared by the VM tests (run.sh: the kernel backend in an initramfs;
# run-systemd.sh: the package under systemd): host packages, Debian's
# kernel, modules for an initramfs. Sourced; expects CACHE set and fail()
# defined by the caller.

# need_packages PKG...: installs those not installed (apt, no recommends).
need_packages() {
  local need=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
  done
  [ ${#need[@]} -eq 0 ] && return 0
  echo "vm: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null ||
    fail "apt-get install ${need[*]}"
}

# fetch_kernel: Debian's kernel (the package linux-image-amd64 depends on),
# downloaded with apt-get download and extracted, not installed, into
# $CACHE; sets KROOT, KVER, KERNEL, PKG. Cached.
fetch_kernel() {
  mkdir -p "$CACHE"
  PKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
    awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$PKG" ] || fail "cannot find the kernel package linux-image-amd64 depends on"
  KROOT=$CACHE/$PKG
  if [ ! -d "$KROOT/lib/modules" ]; then
    echo "vm: fetching $PKG" >&2
    rm -rf "$KROOT" "$KROOT.tmp"
    # apt's _apt user downloads into it: a fresh temp dir it can reach, not
    # the cache, which lives in target/ and so maybe under a 0700 directory.
    local dl
    dl=$(mktemp -d "${TMPDIR:-/tmp}/wgnetconf-vm-dl.XXXXXX")
    chmod 755 "$dl"
    (cd "$dl" && apt-get download -q "$PKG" > "$CACHE/dl.log" 2>&1) ||
      { rm -rf "$dl"; fail "apt-get download $PKG: $(tail -3 "$CACHE/dl.log")"; }
    dpkg-deb -x "$dl"/"$PKG"_*.deb "$KROOT.tmp" || { rm -rf "$dl"; fail "dpkg-deb -x $PKG"; }
    rm -rf "$dl"
    mv "$KROOT.tmp" "$KROOT"
  fi
  KVER=$(ls "$KROOT/lib/modules" | head -1)
  KERNEL=$KROOT/boot/vmlinuz-$KVER
  [ -f "$KERNEL" ] || fail "no $KERNEL in $PKG"
  # An extracted package has no modules.dep (its postinst runs depmod).
  [ -e "$KROOT/lib/modules/$KVER/modules.dep" ] || depmod -b "$KROOT" "$KVER"
}

# copy_modules DIR MODULE...: the modules and their dependencies, in load
# order, decompressed into DIR, their names listed in DIR/order (modules
# built into the kernel are skipped: nothing to load).
copy_modules() {
  local dir=$1 m ko n
  shift
  mkdir -p "$dir"
  touch "$dir/order"
  for m in "$@"; do
    modprobe -d "$KROOT" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}' |
      while read -r ko; do
        n=$(basename "$ko"); n=${n%.xz}; n=${n%.zst}
        grep -qx "$n" "$dir/order" && continue
        case "$ko" in
          *.xz) xz -dc "$ko" > "$dir/$n" ;;
          *.zst) zstd -qdc "$ko" > "$dir/$n" ;;
          *) cp "$ko" "$dir/$n" ;;
        esac
        echo "$n" >> "$dir/order"
      done
  done
}

# copy_bin ROOT BIN [NAME]: BIN as ROOT/bin/NAME with the libraries ldd
# lists (none for a static one).
copy_bin() {
  local root=$1 bin=$2 name=${3:-$(basename "$2")} lib
  install -D -m755 "$bin" "$root/bin/$name"
  if ldd "$bin" >/dev/null 2>&1; then
    ldd "$bin" | grep -oE '/[^ ]+' | while read -r lib; do
      [ -e "$root$lib" ] || install -D -m755 "$(readlink -f "$lib")" "$root$lib"
    done
  fi
}

# install_busybox ROOT [APPLET...]: busybox in ROOT/bin with a link per
# applet, except the APPLETs named (the caller installs the real ones).
install_busybox() {
  local root=$1 bb a
  shift
  bb=$(command -v busybox) || fail "no busybox"
  copy_bin "$root" "$bb" busybox
  for a in $("$bb" --list); do
    case " busybox $* " in *" $a "*) ;; *) ln -sf busybox "$root/bin/$a" ;; esac
  done
}

# boot_vm CONSOLE APPEND [QEMU-ARG...]: boots $KERNEL with $INITRD under
# qemu TCG, no network device at all (-nic none: the VM cannot touch the
# host's network), within $TIMEOUT; the console goes to CONSOLE. Exits 0 when
# the VM printed "VM TEST: PASS", 1 with the VM's reason otherwise.
boot_vm() {
  local console=$1 append=$2
  shift 2
  local start rc reason
  start=$(date +%s)
  set +e
  timeout --foreground -k 5 "$TIMEOUT" qemu-system-x86_64 -accel tcg -cpu max -smp 1 \
    -nographic -no-reboot -nic none -kernel "$KERNEL" -initrd "$INITRD" "$@" \
    -append "$append" < /dev/null | tee "$console"
  rc=${PIPESTATUS[0]}
  set -e
  log "VM ran $(( $(date +%s) - start ))s (qemu exit $rc), console in $console"
  if grep -aq '^VM TEST: PASS' "$console"; then
    exit 0
  fi
  reason=$(grep -a '^VM TEST: FAIL' "$console" | head -1 | tr -d '\r')
  [ -n "$reason" ] || reason="VM TEST: FAIL: no result on the console (qemu exit $rc$([ "$rc" = 124 ] && echo ", timed out after ${TIMEOUT}s"))"
  echo "$reason" >&2
  exit 1
}
