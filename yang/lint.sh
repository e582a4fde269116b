#!/bin/sh
# Lint every wgnetconf YANG module with yanglint and pyang --lint.
# Exits non-zero on any error or warning (any output counts as a warning).
#
# Needs: yanglint (Debian libyang2-tools) and pyang (Debian has no package;
# `python3 -m venv .venv-lint && .venv-lint/bin/pip install pyang` at the
# repository root, or any pyang on PATH). IETF modules come from Debian's
# libyuma-base (/usr/share/yuma/modules/ietf); override with IETF_DIR.
set -u
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
ietf=${IETF_DIR:-/usr/share/yuma/modules/ietf}

if [ -x "$root/.venv-lint/bin/pyang" ]; then
    pyang="$root/.venv-lint/bin/pyang"
else
    pyang=$(command -v pyang || true)
fi
if [ -z "$pyang" ]; then
    echo "lint.sh: pyang not found (see the header of this script)" >&2
    exit 2
fi
if ! command -v yanglint >/dev/null 2>&1; then
    echo "lint.sh: yanglint not found (apt-get install libyang2-tools)" >&2
    exit 2
fi

status=0
for m in "$here"/wgnetconf-*.yang; do
    out=$(yanglint -p "$ietf" -p "$here" "$m" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "yanglint: $m" >&2
        printf '%s\n' "$out" >&2
        status=1
    fi
    out=$("$pyang" --lint -p "$ietf" -p "$here" "$m" 2>&1)
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$out" ]; then
        echo "pyang --lint: $m" >&2
        printf '%s\n' "$out" >&2
        status=1
    fi
done
[ $status -eq 0 ] && echo "lint.sh: all modules clean"
exit $status
