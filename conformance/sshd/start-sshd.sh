#!/bin/bash
# Starts a private OpenSSH sshd on 127.0.0.1 whose `netconf` subsystem is
# `wgnetconf relay --socket SOCKET`, for the conformance suite.
#
#   start-sshd.sh --port PORT --wgnetconf /path/to/wgnetconf \
#                 --socket /path/to/netconf.sock --password PASSWORD \
#                 [--user wgnc] [--dir DIR]
#
# Must run as root. Creates (idempotently) the system user (default
# `wgnc`) with that password and a /bin/sh shell (sshd runs subsystems via
# the login shell), renders sshd_config.template into DIR (default: a new
# temp dir), generates a host key there, starts `sshd -D -e` in the
# background (log: DIR/sshd.log), waits until the port accepts connections
# and prints the sshd PID on stdout. Stop it with `kill PID`.
#
# The agent must list the same user name in its configured users, and the
# user must be able to reach SOCKET and execute the wgnetconf binary (every
# parent directory searchable by others: not under /root).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
port= wgnetconf= socket= password= user=wgnc dir=

while [ $# -gt 0 ]; do
    case "$1" in
        --port) port=$2; shift 2 ;;
        --wgnetconf) wgnetconf=$2; shift 2 ;;
        --socket) socket=$2; shift 2 ;;
        --password) password=$2; shift 2 ;;
        --user) user=$2; shift 2 ;;
        --dir) dir=$2; shift 2 ;;
        *) echo "start-sshd.sh: unknown argument $1" >&2; exit 2 ;;
    esac
done

die() { echo "start-sshd.sh: $*" >&2; exit 1; }
[ -n "$port" ] || die "--port is required"
[ -n "$wgnetconf" ] || die "--wgnetconf is required"
[ -n "$socket" ] || die "--socket is required"
[ -n "$password" ] || die "--password is required"
[ "$(id -u)" -eq 0 ] || die "must run as root"
case "$wgnetconf" in /*) ;; *) wgnetconf=$(cd "$(dirname "$wgnetconf")" && pwd)/$(basename "$wgnetconf") ;; esac
[ -x "$wgnetconf" ] || die "$wgnetconf is not executable"
case "$socket" in /*) ;; *) die "--socket must be an absolute path" ;; esac
[ -x /usr/sbin/sshd ] || die "/usr/sbin/sshd not found (apt-get install openssh-server)"

# The account: created once, password (re)set every time.
if ! id "$user" >/dev/null 2>&1; then
    useradd --system --create-home --home-dir "/home/$user" --shell /bin/sh "$user"
fi
printf '%s:%s\n' "$user" "$password" | chpasswd

# sshd insists on its privilege-separation directory.
mkdir -p /run/sshd
chmod 0755 /run/sshd

if [ -z "$dir" ]; then
    dir=$(mktemp -d /tmp/wgnetconf-sshd.XXXXXX)
else
    mkdir -p "$dir"
fi
chmod 0700 "$dir"
rm -f "$dir/ssh_host_ed25519_key" "$dir/ssh_host_ed25519_key.pub"
ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key"

# `|` as the sed delimiter: paths contain slashes.
sed -e "s|@PORT@|$port|g" \
    -e "s|@DIR@|$dir|g" \
    -e "s|@WGNETCONF@|$wgnetconf|g" \
    -e "s|@SOCKET@|$socket|g" \
    "$here/sshd_config.template" > "$dir/sshd_config"

/usr/sbin/sshd -t -f "$dir/sshd_config" || die "invalid config $dir/sshd_config"
/usr/sbin/sshd -D -e -f "$dir/sshd_config" >"$dir/sshd.log" 2>&1 &
pid=$!

# Ready when the port accepts a connection (bounded: 10 s).
i=0
while :; do
    if ! kill -0 "$pid" 2>/dev/null; then
        cat "$dir/sshd.log" >&2
        die "sshd exited"
    fi
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        break
    fi
    i=$((i + 1))
    [ "$i" -lt 100 ] || die "sshd not listening on port $port after 10 s"
    sleep 0.1
done
echo "$pid"
