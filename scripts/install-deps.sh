#!/usr/bin/env bash
# Installs what building and testing wgnetconf needs on Debian 12, and
# nothing when it is all there already. Run as root (CI and the quick start
# do).
set -euo pipefail

PACKAGES=(
  # libyang (bundled by the yang5 crate) builds with cmake and needs pcre2
  cmake libpcre2-dev pkg-config
  # the IETF YANG modules (ietf-netconf, -acm, -with-defaults, ...)
  libyuma-base
  # clients and peers used by the tests
  openssh-client openssh-server yangcli sshpass libyang2-tools
  wireguard-tools wireguard-go iproute2 iputils-ping iperf3
  # the conformance venv
  python3-venv python3-pip
  # the Debian package: dpkg-deb, dpkg-shlibdeps, strip, systemd-analyze
  dpkg-dev binutils systemd
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: need root to install: ${missing[*]}" >&2
    exit 1
  fi
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}" >/dev/null
fi
