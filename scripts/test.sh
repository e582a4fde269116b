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
# The kernel backend in a VM running Debian's kernel (tests/vm/README.md);
# WGNETCONF_VM=0 skips it.
if [ "${WGNETCONF_VM:-1}" != 0 ]; then tests/vm/run.sh; fi
