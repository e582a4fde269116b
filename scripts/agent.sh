#!/usr/bin/env bash
# Quick start, command 1: install what is missing, build, and run the agent in
# the foreground with the example configuration (NETCONF/SSH on port 830,
# state in /var/lib/wgnetconf). The first start prints the generated admin
# password once.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
cargo build --release
exec target/release/wgnetconf serve --config "${WGNETCONF_CONFIG:-wgnetconf.example.toml}"
