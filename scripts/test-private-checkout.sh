#!/usr/bin/env bash
# Issue 18: the suite passes wherever the repository is cloned, also under a
# directory only root can traverse (a clone under `mktemp -d`, or in /root).
# Tests that run something as another user (the relay as `nobody`, sshd's
# relay as `wgnc`) must copy it to a temp dir that user can reach instead of
# running it from the checkout or target/.
#
# This re-runs those tests with the checkout's parent directory seen as mode
# 0700, like a fresh clone under `mktemp -d`: in a private mount namespace a
# 0700 tmpfs covers the parent and every entry of the parent is bind-mounted
# back, so every path (target/, ~/.cargo, the compiled-in binary paths) stays
# the same for root and nothing rebuilds (a real clone with its own target/
# would rebuild everything; one sharing target/ would rebuild the workspace
# crates and leave target/ built from another tree). Run after
# `cargo build --all-targets`. Needs root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd -P)
parent=$(dirname "$ROOT")

fail() { echo "test-private-checkout: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (mount namespace, tests run as other users)"
case "$parent" in
  /) fail "the checkout is directly under /: nothing to cover" ;;
  /tmp | /run) fail "the checkout is directly under $parent, which the tests need world-traversable" ;;
esac

if [ "${1:-}" != --inside ]; then
  # Mounts made below vanish with the namespace, also on failure.
  exec unshare --mount --propagation private "$0" --inside
fi

keep=$(mktemp -d /run/wgnetconf-private.XXXXXX)
mount --rbind "$parent" "$keep"
mount -t tmpfs -o mode=0700 wgnetconf-private "$parent"
shopt -s dotglob nullglob
for e in "$keep"/*; do
  n=$parent/$(basename "$e")
  if [ -L "$e" ]; then
    cp -P "$e" "$n"
  elif [ -d "$e" ]; then
    mkdir "$n" && mount --rbind "$e" "$n"
  else
    touch "$n" && mount --bind "$e" "$n"
  fi
done

# The premise: another uid cannot reach what is inside the checkout.
if setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$ROOT/Cargo.toml"; then
  fail "nobody can still read $ROOT/Cargo.toml: the cover did not work"
fi
echo "test-private-checkout: $parent is 0700; running the tests that run as other users"
cd "$ROOT"
# ssh_transport: the relay as `nobody`; conformance: sshd runs the relay as
# `wgnc` (and reads its files as root), and as the NACM test's two users.
cargo test -q --test ssh_transport relay
conformance/run.sh -k "(sshd and default_auth) or (nacm and sshd)"
