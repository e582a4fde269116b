#!/usr/bin/env bash
# The conformance suite: real clients against a real agent.
#   - ncclient (paramiko) over OpenSSH's sshd + `wgnetconf relay`, with its
#     default authentication (an unauthorised key tried first, then the
#     password), and over the built-in SSH server;
#   - Debian's yangcli (yuma123, libssh2) for an edit + commit;
#   - yanglint / pyang over our YANG modules;
#   - Ansible's netconf modules through sshd, and the two-site key rotation
#     (two agents on boringtun in network namespaces).
# Needs root (sshd, a system user for it). Installs its Python packages into
# conformance/.venv.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/.."
if [ ! -x "$here/.venv/bin/python" ]; then
  python3 -m venv "$here/.venv"
fi
"$here/.venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt"
cargo build -q --bin wgnetconf
export PATH="$here/.venv/bin:$PATH"
export WGNETCONF_BIN="$PWD/target/debug/wgnetconf"
exec "$here/.venv/bin/python" -m pytest -q -p no:cacheprovider "$here" "$@"
