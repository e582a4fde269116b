#!/usr/bin/env bash
# Quick start, command 2: every test — Rust unit and integration tests (real
# SSH sessions, real libyang, real tun devices in network namespaces), then
# the conformance suite with real clients (ncclient over OpenSSH's sshd and
# the built-in SSH server, yangcli, yanglint/pyang). Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
# Tests that need root, namespaces or tun devices fail here, rather than
# skip, when they cannot run: the test command must not pass without them.
export WGNETCONF_REQUIRE_ALL=1
cargo build --all-targets
# The Debian package, built from the debug build just made (the shipped one
# is release: scripts/build-deb.sh), and what is in it; the VM installs it.
export WGNETCONF_DEB_PROFILE=debug
WGNETCONF_DEB=$(WGNETCONF_DEB_BUILD=0 scripts/build-deb.sh)
export WGNETCONF_DEB
scripts/check-deb.sh
cargo test --workspace -- --test-threads="${TEST_THREADS:-4}"
conformance/run.sh
# The tests that run something as another user, again with the checkout's
# parent directory mode 0700 (a clone under `mktemp -d`; issue 18).
scripts/test-private-checkout.sh
# The benchmark at smoke size, so it cannot rot (asserts no timings; it does
# assert that no acknowledged edit is lost).
target/debug/wgnetconf-bench --smoke --model plain
target/debug/wgnetconf-bench --smoke --model wg
target/debug/wgnetconf-bench --smoke --nacm
# The kernel backend in a VM running Debian's kernel, then the package under
# Debian 12's systemd in a VM (tests/vm/README.md); WGNETCONF_VM=0 skips both.
if [ "${WGNETCONF_VM:-1}" != 0 ]; then
  tests/vm/run.sh
  tests/vm/run-systemd.sh
fi
