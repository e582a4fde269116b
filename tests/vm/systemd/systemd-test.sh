#!/bin/sh
# Inside the systemd VM (../run-systemd.sh), run by wgnetconf-vmtest.service
# once the system is up: the package on Debian 12 under systemd 252 as PID 1.
# apt install gives a running agent (Type=notify: `systemctl start` returns
# only after READY=1); the initial password is in its 0600 file and not in
# the journal; NETCONF works on the socket and programs the kernel; watchdog
# pings arrive; a wedged core is restarted by the watchdog; reload applies a
# new [[users]] without a restart and refuses a broken file; restart keeps
# running; stop is clean; apt remove stops it and keeps the state; apt purge
# removes it. Prints its verdict on the console and powers off.
set -u
exec > /dev/ttyS0 2>&1
VT=/root/vmtest
PROFILE=$(cat "$VT/profile")
NS=urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel

up() { cut -d' ' -f1 /proc/uptime; }
log() { echo "vmtest [$(up)s]: $*"; }
verdict() {
  echo "VM TEST: $*"
  sync
  systemctl poweroff --force --force
  sleep 30
}
fail() {
  log "FAIL: $*"
  systemctl status --no-pager -n 0 wgnetconf 2>&1 | head -15
  journalctl --no-pager -u wgnetconf -n 40 -o short-monotonic 2>&1
  verdict "FAIL: $*"
  exit 1
}
# wait_for SECONDS WHAT COMMAND...: polls COMMAND until it succeeds; fails
# with WHAT after SECONDS. The condition is what is waited for; the pause
# only sets how often it is looked at.
wait_for() {
  secs=$1 what=$2
  shift 2
  end=$(($(date +%s) + secs))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$end" ] && fail "$what (not within ${secs}s)"
    sleep 0.5
  done
}
prop() { systemctl show -p "$1" --value wgnetconf.service; }
changed() { [ "$(prop "$1")" != "$2" ]; }
greater() { [ "$(prop "$1")" -gt "$2" ]; }
is_state() { [ "$(systemctl is-active wgnetconf.service)" = "$1" ]; }
# One rpc on the local socket as root (the NACM recovery session).
rpc() { echo "$1" | wgnetconf rpc; }
journal() { journalctl --no-pager -u wgnetconf.service -o cat; }

log "$(systemctl --version | head -1); package built with the $PROFILE profile"

# --- apt install gives a running agent -----------------------------------------
apt-get install -y "$VT/wgnetconf.deb" > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt install ./wgnetconf.deb"; }
log "installed"
is_state active || fail "wgnetconf is $(systemctl is-active wgnetconf) after apt install, not active"
[ "$(systemctl is-enabled wgnetconf)" = enabled ] || fail "not enabled after install"
[ "$(prop Type)" = notify ] || fail "Type=$(prop Type)"
case "$(prop StatusText)" in "serving NETCONF"*) ;; *) fail "STATUS is '$(prop StatusText)'" ;; esac
[ "$(prop WatchdogUSec)" = 30s ] || fail "WatchdogUSec=$(prop WatchdogUSec)"
[ "$(stat -c %a /var/lib/wgnetconf)" = 700 ] || fail "state dir mode $(stat -c %a /var/lib/wgnetconf)"
[ "$(stat -c %a /run/wgnetconf)" = 755 ] || fail "run dir mode $(stat -c %a /run/wgnetconf)"
grep -q '^wireguard ' /proc/modules || fail "ExecStartPre did not load the wireguard module"
log "active (READY=1 came), STATUS '$(prop StatusText)'"

PWFILE=/var/lib/wgnetconf/initial-admin-password
[ "$(stat -c %a "$PWFILE" 2>/dev/null)" = 600 ] || fail "no 0600 $PWFILE"
PW=$(cat "$PWFILE")
[ ${#PW} -ge 20 ] || fail "short initial password"
journalctl --no-pager -o cat | grep -qF "$PW" && fail "the initial password is in the journal"
journal | grep -q "$PWFILE" || fail "the journal does not say where the password is"
ESC=$(printf '\033')
journal | grep -qF "$ESC" && fail "ANSI colours in the journal"
journal | grep -q '^<[0-7]>' && fail "the <N> priority prefixes were not taken as priorities"
journalctl --no-pager -u wgnetconf -p warning -o cat | grep -q 'wgnetconf::agent: ready' &&
  fail "an info line was logged as a warning"
log "initial password in a 0600 file only; journal lines plain with priorities"

# --- NETCONF on the socket, the kernel backend --------------------------------
rpc "<edit-config><target><running/></target><config><tunnel xmlns=\"$NS\"><wireguard><instance>1</instance><listen-port>51820</listen-port><address>10.255.0.1/24</address></wireguard></tunnel></config></edit-config>" |
  grep -q '<ok/>' || fail "edit-config of wireguard 1"
ip -d link show wg1 2>/dev/null | grep -q wireguard || fail "no kernel wg1 after the commit"
log "NETCONF edit made the kernel's wg1"

# --- watchdog: pings arrive ------------------------------------------------------
W0=$(prop WatchdogTimestampMonotonic)
wait_for 60 "a watchdog ping (WatchdogTimestamp unchanged)" changed WatchdogTimestampMonotonic "$W0"
log "watchdog pings arrive"

# --- reload: new users without a restart; a broken file refused -----------------
PID0=$(prop MainPID)
CONF=/etc/wgnetconf/wgnetconf.toml
cp "$CONF" /root/wgnetconf.toml.orig
cat >> "$CONF" <<'TOML'
[[users]]
name = "ops"
groups = ["admin"]
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4P2pvDXc1BNUPg+SJhOrZmlb9hZhJ0xR13dkHQZnxL ops@vm"]
TOML
systemctl reload wgnetconf || fail "systemctl reload"
[ "$(prop MainPID)" = "$PID0" ] || fail "reload changed the main pid"
is_state active || fail "not active after reload"
journal | grep -q 'reloaded: users, keys, groups and limits applied' || fail "no 'reloaded' in the journal"
# A user the agent cannot use (a password hash of no known scheme): the
# agent refuses the file, `systemctl reload` fails.
printf '[[users]]\nname = "carol"\npassword_hash = "plain"\n' >> "$CONF"
systemctl reload wgnetconf 2>/dev/null && fail "an invalid configuration reloaded"
journal | grep -q 'reload failed: nothing changed' || fail "the agent did not log the refused reload"
is_state active || fail "a refused reload stopped the agent"
[ "$(prop MainPID)" = "$PID0" ] || fail "a refused reload restarted the agent"
cp /root/wgnetconf.toml.orig "$CONF"
systemctl reload wgnetconf || fail "reload of the original configuration"
log "reload: applied without restart (pid $PID0), an invalid file refused by the agent"

# --- restart keeps running --------------------------------------------------------
systemctl restart wgnetconf || fail "systemctl restart"
[ "$(prop MainPID)" != "$PID0" ] || fail "restart kept the pid"
rpc '<get-config><source><running/></source></get-config>' | grep -q '<listen-port>51820</listen-port>' ||
  fail "running lost at restart"
log "restart kept running"

# --- a wedged core: the watchdog restarts the agent ------------------------------
D=/run/systemd/system/wgnetconf.service.d
mkdir -p "$D"
{
  echo "[Service]"
  echo "WatchdogSec=6"
  echo "TimeoutAbortSec=5"
  # The debug build's fault point holds the core lock forever in an edit.
  [ "$PROFILE" = debug ] && echo "Environment=WGNETCONF_FAULT=hang-in-edit"
} > "$D/wedge.conf"
systemctl daemon-reload
systemctl restart wgnetconf || fail "restart with the wedge drop-in"
R0=$(prop NRestarts)
W0=$(prop WatchdogTimestampMonotonic)
wait_for 30 "a watchdog ping before the wedge" changed WatchdogTimestampMonotonic "$W0"
if [ "$PROFILE" = debug ]; then
  rpc "<edit-config><target><running/></target><config><tunnel xmlns=\"$NS\"><wireguard><instance>1</instance><mtu>1400</mtu></wireguard></tunnel></config></edit-config>" >/dev/null 2>&1 &
  how="an edit hung in the core"
else
  # A release build has no fault points: a stopped process is as silent.
  kill -STOP "$(prop MainPID)"
  how="SIGSTOP"
fi
wait_for 240 "a watchdog restart after $how" greater NRestarts "$R0"
journal | grep -q 'Watchdog timeout' || fail "no 'Watchdog timeout' in the journal"
rm -f "$D/wedge.conf"
systemctl daemon-reload
wait_for 240 "active again after the watchdog restart" is_state active
systemctl restart wgnetconf || fail "restart without the drop-in"
log "watchdog restarted the agent wedged by $how"

# --- stop ------------------------------------------------------------------------
systemctl stop wgnetconf
is_state inactive || fail "not inactive after stop"
[ "$(prop Result)" = success ] || fail "stop result $(prop Result)"
journal | tail -15 | grep -q 'wgnetconf::agent: stopped' || fail "the agent did not log its clean stop"
ip -d link show wg1 2>/dev/null | grep -q wireguard || fail "stop removed the kernel's wg1"
log "stopped cleanly; wg1 kept"

# --- apt remove, apt purge ---------------------------------------------------------
systemctl start wgnetconf || fail "start before remove"
apt-get remove -y wgnetconf > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt remove"; }
is_state active && fail "still active after apt remove"
pidof wgnetconf >/dev/null && fail "an agent process survived apt remove"
[ -e /usr/bin/wgnetconf ] && fail "/usr/bin/wgnetconf left after remove"
[ -f /var/lib/wgnetconf/users.toml ] || fail "apt remove deleted the state"
[ -f "$CONF" ] || fail "apt remove deleted the conffile"
apt-get purge -y wgnetconf > /tmp/apt.log 2>&1 || { cat /tmp/apt.log; fail "apt purge"; }
[ -e /var/lib/wgnetconf ] && fail "apt purge left /var/lib/wgnetconf"
[ -e /etc/wgnetconf ] && fail "apt purge left /etc/wgnetconf"
[ -e /run/wgnetconf ] && fail "apt purge left /run/wgnetconf"
log "remove kept the state, purge removed it"

verdict "PASS (uptime $(up)s)"
