#!/bin/sh
# Runs inside the test VM (started by init): the WireGuard guide's Figure 1
# with the kernel backend, configured only through NETCONF.
#
#   hostA 10.0.1.10 -- siteA ==== wg1 tunnel ==== siteB -- hostB 10.0.2.10
#        (10.0.1.0/24)  203.0.113.1 "internet" 198.51.100.1  (10.0.2.0/24)
#
# Each of hostA, siteA, siteB, hostB is a network namespace; siteA and siteB
# route between their site network and wg1. One agent per site: siteA with
# backend = "kernel", siteB with backend = "auto" (must pick kernel).
# The last line printed is "PASS" or "FAIL: <reason>".
export PATH=/bin WG_COLOR_MODE=never
NS=urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel
BREAK=$(cat /test/break 2>/dev/null || true)
[ -e /test/trace ] && set -x
T0=$(cut -d' ' -f1 /proc/uptime)
ip() { /bin/ip "$@"; }       # never a busybox applet: it has no netns/wireguard
nsx() { n=$1; shift; ip netns exec "$n" "$@"; }
step() { echo "== [$(cut -d' ' -f1 /proc/uptime)s] $*"; }
fail() {
  for s in siteA siteB; do
    [ -f "/tmp/$s.log" ] && { echo "-- agent $s log (tail):"; tail -15 "/tmp/$s.log"; }
  done
  for s in siteA siteB; do echo "-- wg show ($s):"; nsx $s wg show 2>&1 | head -20; done
  echo "FAIL: $*"
  exit 1
}

# --- topology ----------------------------------------------------------------
step "topology: hostA - siteA - internet - siteB - hostB"
for n in hostA siteA siteB hostB; do
  ip netns add $n || fail "ip netns add $n"
  ip -n $n link set lo up
done
ip link add inet netns siteA type veth peer name inet netns siteB || fail "veth (internet)"
ip link add lan netns siteA type veth peer name eth0 netns hostA || fail "veth (site A lan)"
ip link add lan netns siteB type veth peer name eth0 netns hostB || fail "veth (site B lan)"
ip -n siteA addr add 203.0.113.1/24 dev inet
ip -n siteB addr add 198.51.100.1/24 dev inet
ip -n siteA addr add 10.0.1.1/24 dev lan
ip -n siteB addr add 10.0.2.1/24 dev lan
ip -n hostA addr add 10.0.1.10/24 dev eth0
ip -n hostB addr add 10.0.2.10/24 dev eth0
for n in siteA siteB; do
  ip -n $n link set inet up; ip -n $n link set lan up
  nsx $n sysctl -qw net.ipv4.ip_forward=1 || fail "forwarding in $n"
done
for n in hostA hostB; do ip -n $n link set eth0 up; done
# The "internet": each public network is on-link from the other side.
ip -n siteA route add 198.51.100.0/24 dev inet || fail "route to siteB's public network"
ip -n siteB route add 203.0.113.0/24 dev inet || fail "route to siteA's public network"
ip -n hostA route add default via 10.0.1.1
ip -n hostB route add default via 10.0.2.1
nsx siteA ping -c 1 -W 5 198.51.100.1 >/dev/null || fail "no path over the internet veth"

# --- agents ------------------------------------------------------------------
sock() { echo "/run/wgnetconf-$1/netconf.sock"; }
start_agent() {   # site [env...]
  s=$1; shift
  : > "/tmp/$s.out"
  env "$@" ip netns exec "$s" wgnetconf serve --config "/etc/wgnetconf-$s.toml" \
    > "/tmp/$s.out" 2>> "/tmp/$s.log" &
  eval "PID_$s=$!"
  i=0
  until grep -q '^READY' "/tmp/$s.out"; do
    i=$((i + 1))
    [ $i -le 480 ] || fail "agent $s not READY after 240 s"
    running "$(eval echo \$PID_$s)" || fail "agent $s exited before READY"
    sleep 0.5
  done
}
running() {   # pid -- alive and not a zombie
  [ -r "/proc/$1/stat" ] && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat"
}
stop_agent() {
  p=$(eval echo \$PID_$1)
  kill -TERM "$p"
  i=0
  while running "$p"; do
    i=$((i + 1)); [ $i -le 60 ] || fail "agent $1 still running 30 s after SIGTERM"; sleep 0.5
  done
  wait "$p" 2>/dev/null
}
for s in siteA siteB; do
  backend=kernel; [ $s = siteB ] && backend=auto
  cat > "/etc/wgnetconf-$s.toml" <<EOF
state_dir = "/var/lib/wgnetconf-$s"
run_dir = "/run/wgnetconf-$s"
[ssh]
enabled = false
[wireguard]
backend = "$backend"
EOF
done
step "start agents (siteA: kernel, siteB: auto)"
start_agent siteA
start_agent siteB
grep -q "using the kernel backend" /tmp/siteA.log || fail "siteA: kernel backend not in use"
grep -q "using the kernel backend" /tmp/siteB.log || fail "backend = auto did not pick the kernel backend"

# --- NETCONF helpers ---------------------------------------------------------
rpc() {   # site  (rpc body on stdin; reply in /tmp/reply)
  wgnetconf rpc --socket "$(sock "$1")" > /tmp/reply 2>&1
}
commit() {   # site tunnel-body  -- edit-config candidate + commit
  printf '<edit-config><target><candidate/></target><config><tunnel xmlns="%s">%s</tunnel></config></edit-config>' \
    "$NS" "$2" | rpc "$1" || fail "$1: edit-config: $(cat /tmp/reply)"
  echo '<commit/>' | rpc "$1"
}
get() {   # site -> /tmp/get: one line per <peer>, interface leaves on the others
  printf '<get><filter type="subtree"><tunnel xmlns="%s"/></filter></get>' "$NS" | rpc "$1" ||
    fail "$1: get: $(cat /tmp/reply)"
  tr -d '\n' < /tmp/reply | sed -e 's#<peer>#\n<peer>#g' -e 's#</peer>#</peer>\n#g' > /tmp/get
}
leaf() {   # leaf-name [peer-instance] -- from /tmp/get
  if [ -n "${2:-}" ]; then
    grep "^<peer><instance>$2</instance>" /tmp/get
  else
    grep -v '^<peer>' /tmp/get
  fi | sed -n "s#.*<$1>\([^<]*\)</$1>.*#\1#p" | head -1
}
ping_ok() {   # ns dst -- some echo reply within ~20 tries (first handshake)
  i=0
  while [ $i -lt 20 ]; do
    nsx "$1" ping -c 1 -W 2 "$2" >/dev/null 2>&1 && return 0
    i=$((i + 1))
  done
  return 1
}
ping_none() {   # ns dst -- no reply at all
  ! nsx "$1" ping -c 3 -W 1 "$2" >/dev/null 2>&1
}
handshake() {   # ns pubkey -- kernel's latest handshake (epoch s) of that peer
  nsx "$1" wg show wg1 latest-handshakes | awk -v k="$2" '$1 == k {print $2}'
}

# --- tunnel, configured only through NETCONF ---------------------------------
step "commit wg1 on both sites (agent generates the private keys)"
commit siteA '<wireguard><instance>1</instance><listen-port>51820</listen-port><address>10.255.0.1/24</address></wireguard>' ||
  fail "siteA: commit wg1: $(cat /tmp/reply)"
commit siteB '<wireguard><instance>1</instance><listen-port>51820</listen-port><address>10.255.0.2/24</address></wireguard>' ||
  fail "siteB: commit wg1: $(cat /tmp/reply)"
get siteA; PA=$(leaf public-key)
get siteB; PB=$(leaf public-key)
[ -n "$PA" ] && [ -n "$PB" ] || fail "no public-key in <get> (siteA '$PA', siteB '$PB')"
[ "$(nsx siteA wg show wg1 public-key)" = "$PA" ] || fail "siteA: <get> public-key differs from the kernel's"
ip -n siteA -d link show wg1 | grep -q wireguard || fail "siteA: wg1 is not a kernel wireguard link"

NETB=10.0.2.0/24; NETA=10.0.1.0/24
if [ "$BREAK" = allowed-ips ]; then
  echo "!! scratch run: allowed-ips do not cover the remote site"
  NETB=10.0.9.0/24; NETA=10.0.8.0/24
fi
peer() {   # instance pubkey endpoint allowed-ip...
  p="<peer><instance>$1</instance><public-key>$2</public-key><endpoint>$3</endpoint><listen-port>51820</listen-port>"
  shift 3
  for a in "$@"; do p="$p<allowed-ip>$a</allowed-ip>"; done
  echo "$p</peer>"
}
step "commit the peers"
commit siteA "<wireguard><instance>1</instance>$(peer 1 "$PB" 198.51.100.1 10.255.0.2/32 $NETB)</wireguard>" ||
  fail "siteA: commit peer: $(cat /tmp/reply)"
commit siteB "<wireguard><instance>1</instance>$(peer 1 "$PA" 203.0.113.1 10.255.0.1/32 $NETA)</wireguard>" ||
  fail "siteB: commit peer: $(cat /tmp/reply)"

step "ping hostA -> hostB across the tunnel"
ping_ok hostA 10.0.2.10 || fail "ping hostA 10.0.1.10 -> hostB 10.0.2.10 across the tunnel got no reply"
ping_ok hostB 10.0.1.10 || fail "ping hostB -> hostA across the tunnel got no reply"
nsx hostA ping -c 3 -W 2 10.0.2.10 || fail "ping hostA -> hostB: replies lost once the tunnel was up"

step "handshake and counters in <get>"
for s in siteA siteB; do
  get $s
  hs=$(leaf latest-handshake 1); rx=$(leaf rx-bytes 1); tx=$(leaf tx-bytes 1)
  echo "$s peer 1: latest-handshake=$hs rx-bytes=$rx tx-bytes=$tx oper-status=$(leaf oper-status)"
  [ -n "$hs" ] || fail "$s: no latest-handshake for peer 1 in <get>"
  [ "${rx:-0}" -gt 0 ] && [ "${tx:-0}" -gt 0 ] || fail "$s: rx/tx bytes of peer 1 are '$rx'/'$tx' in <get>"
  [ "$(leaf oper-status)" = up ] || fail "$s: oper-status is '$(leaf oper-status)'"
done
wgnetconf show wg1 --socket "$(sock siteA)" || fail "wgnetconf show wg1"

step "a second peer's edits leave the first peer's session alone"
H1=$(handshake siteA "$PB")
[ -n "$H1" ] && [ "$H1" != 0 ] || fail "siteA: no kernel handshake with siteB"
P2=$(wgnetconf genkey | wgnetconf pubkey)
commit siteA "<wireguard><instance>1</instance>$(peer 2 "$P2" 192.0.2.1 10.0.3.0/24)</wireguard>" ||
  fail "siteA: add peer 2: $(cat /tmp/reply)"
commit siteA "<wireguard><instance>1</instance><peer><instance>2</instance><allowed-ip>10.0.4.0/24</allowed-ip><persistent-keepalive>0</persistent-keepalive></peer></wireguard>" ||
  fail "siteA: edit peer 2: $(cat /tmp/reply)"
nsx siteA wg show wg1 allowed-ips | grep "^$P2" | grep -q 10.0.4.0/24 || fail "siteA: peer 2 edit not in the kernel"
[ "$(handshake siteA "$PB")" = "$H1" ] || fail "peer 1's handshake changed ($H1 -> $(handshake siteA "$PB")) when peer 2 was edited"
nsx hostA ping -c 2 -W 2 10.0.2.10 >/dev/null || fail "ping after editing peer 2"
[ "$(handshake siteA "$PB")" = "$H1" ] || fail "peer 1 needed a new handshake after peer 2 was edited"

step "out-of-band change (wg set) shows in operational state"
nsx siteA wg set wg1 peer "$P2" endpoint 192.0.2.99:4242 || fail "wg set"
get siteA
[ "$(leaf current-endpoint 2)" = 192.0.2.99:4242 ] ||
  fail "siteA: current-endpoint of peer 2 is '$(leaf current-endpoint 2)', not the wg set 192.0.2.99:4242"

step "peer disable stops traffic, enable restores it"
commit siteA '<wireguard><instance>1</instance><peer><instance>1</instance><enable>false</enable></peer></wireguard>' ||
  fail "siteA: disable peer 1: $(cat /tmp/reply)"
nsx siteA wg show wg1 peers | grep -q "^$PB" && fail "siteA: disabled peer 1 still in the kernel"
ping_none hostA 10.0.2.10 || fail "ping crossed the tunnel with peer 1 disabled"
commit siteA '<wireguard><instance>1</instance><peer><instance>1</instance><enable>true</enable></peer></wireguard>' ||
  fail "siteA: enable peer 1: $(cat /tmp/reply)"
ping_ok hostA 10.0.2.10 || fail "no traffic after peer 1 was enabled again"

step "agent restart adopts the kernel interface without dropping traffic"
IDX=$(ip -n siteA -o link show wg1 | cut -d: -f1)
H1=$(handshake siteA "$PB")
# 150 echoes, one every 0.2 s (30 s), across the stop and the restart.
nsx hostA ping -q -i 0.2 -c 150 -W 2 10.0.2.10 > /tmp/ping.log 2>&1 &
PING=$!
sleep 1
stop_agent siteA
echo "siteA agent stopped; wg1 in the kernel: $(ip -n siteA -o link show wg1 | cut -d' ' -f2)"
ip -n siteA link show wg1 >/dev/null 2>&1 || fail "wg1 disappeared when the siteA agent stopped"
nsx siteA wg show wg1 peers | grep -q "^$PB" || fail "peer 1 disappeared when the siteA agent stopped"
start_agent siteA
echo "siteA agent restarted; waiting for the background ping"
kill -0 $PING 2>/dev/null || fail "the background ping ended before the restart was over: $(cat /tmp/ping.log)"
wait $PING
tail -2 /tmp/ping.log
sent=$(sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p' /tmp/ping.log)
got=$(sed -n 's/.* \([0-9]*\) packets received.*/\1/p' /tmp/ping.log)
[ -n "$sent" ] && [ "$sent" -ge 5 ] || fail "background ping did not run: $(tail -2 /tmp/ping.log)"
[ "$got" = "$sent" ] || fail "traffic dropped during the agent restart: $got of $sent replies"
[ "$(ip -n siteA -o link show wg1 | cut -d: -f1)" = "$IDX" ] || fail "wg1 was recreated at restart (ifindex $IDX -> $(ip -n siteA -o link show wg1 | cut -d: -f1))"
[ "$(handshake siteA "$PB")" = "$H1" ] || fail "peer 1's session was reset at restart (handshake $H1 -> $(handshake siteA "$PB"))"
nsx siteA wg show wg1 endpoints | grep "^$P2" | grep -q 192.0.2.1:51820 ||
  fail "restart did not reconcile peer 2's out-of-band endpoint: $(nsx siteA wg show wg1 endpoints | grep "^$P2")"
get siteA
[ -n "$(leaf latest-handshake 1)" ] || fail "after restart: no latest-handshake for peer 1 in <get>"
commit siteA "<wireguard><instance>1</instance><peer><instance>2</instance><allowed-ip>10.0.5.0/24</allowed-ip></peer></wireguard>" ||
  fail "after restart: edit peer 2: $(cat /tmp/reply)"
nsx siteA wg show wg1 allowed-ips | grep "^$P2" | grep -q 10.0.5.0/24 || fail "after restart: peer 2 edit not in the kernel"

step "an injected failure half way through a multi-peer commit leaves the kernel as it was"
stop_agent siteA
start_agent siteA WGNETCONF_FAULT_AFTER_OPS=4
grep -q "WGNETCONF_FAULT_AFTER_OPS" /tmp/siteA.log || fail "the agent did not arm WGNETCONF_FAULT_AFTER_OPS"
nsx siteA wg show all dump > /tmp/dump.before
ip -n siteA addr show dev wg1 > /tmp/addr.before
ip -n siteA route show > /tmp/route.before
P3=$(wgnetconf genkey | wgnetconf pubkey); P4=$(wgnetconf genkey | wgnetconf pubkey)
if commit siteA "<wireguard><instance>1</instance><address>10.255.9.1/24</address><peer xmlns:nc=\"urn:ietf:params:xml:ns:netconf:base:1.0\" nc:operation=\"delete\"><instance>2</instance></peer>$(peer 3 "$P3" 192.0.2.3 10.0.6.0/24)$(peer 4 "$P4" 192.0.2.4 10.0.7.0/24)</wireguard>"; then
  fail "the commit with an injected failure succeeded"
fi
grep -q "injected" /tmp/reply || fail "the failed commit's rpc-error does not name the injected failure: $(cat /tmp/reply)"
echo "commit failed as injected: $(sed -n 's#.*<error-message[^>]*>\([^<]*\)<.*#\1#p' /tmp/reply | head -1)"
nsx siteA wg show all dump > /tmp/dump.after
ip -n siteA addr show dev wg1 > /tmp/addr.after
ip -n siteA route show > /tmp/route.after
# The kernel lists peers in the order they were added, and a peer the
# commit removed and the undo put back comes last: compare the dump as a set
# of lines (every field, handshake times and counters included).
if ! cmp -s /tmp/dump.before /tmp/dump.after; then
  echo "note: same peers, different order in wg show dump (a removed peer restored by the undo is re-added last):"
  diff /tmp/dump.before /tmp/dump.after
  sort /tmp/dump.before > /tmp/dump.b; mv /tmp/dump.b /tmp/dump.before
  sort /tmp/dump.after > /tmp/dump.a; mv /tmp/dump.a /tmp/dump.after
fi
for f in dump addr route; do
  cmp -s /tmp/$f.before /tmp/$f.after || {
    diff /tmp/$f.before /tmp/$f.after
    fail "the failed commit changed the kernel's state ($f)"
  }
done
echo '<discard-changes/>' | rpc siteA || fail "discard-changes: $(cat /tmp/reply)"
ping_ok hostA 10.0.2.10 || fail "no traffic after the failed commit"

# --- drift (README "Drift detection and repair") --------------------------------
AGENT_NS=urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent
check_drift() {   # site true|false -> "found repaired failed"
  printf '<check-drift xmlns="%s"><repair>%s</repair></check-drift>' "$AGENT_NS" "$2" | rpc "$1" ||
    fail "$1: check-drift: $(cat /tmp/reply)"
  tr -d '\n' < /tmp/reply |
    sed -n 's#.*<found[^>]*>\([0-9]*\)</found>.*<repaired[^>]*>\([0-9]*\)</repaired>.*<failed[^>]*>\([0-9]*\)</failed>.*#\1 \2 \3#p'
}
drift_of() {   # site peer-instance -> the drift items of that peer in <get>
  get "$1"
  grep "^<peer><instance>$2</instance>" /tmp/get | grep -o '<item>[^<]*</item>' | sed 's#</*item>##g'
}
step "drift: wg set changes a peer's allowed-ips behind the agent's back"
H1=$(handshake siteA "$PB")
[ -n "$H1" ] && [ "$H1" != 0 ] || fail "siteA: no handshake with siteB before the drift steps"
[ "$(check_drift siteA false)" = "0 0 0" ] || fail "drift before any out-of-band change: $(cat /tmp/reply)"
nsx siteA wg set wg1 peer "$P2" allowed-ips 10.0.9.0/24 || fail "wg set allowed-ips"
[ "$(check_drift siteA false)" = "1 0 0" ] || fail "allowed-ips drift not found: $(cat /tmp/reply)"
[ "$(drift_of siteA 2)" = allowed-ips ] || fail "no allowed-ips drift for peer 2 in <get>: $(grep "^<peer><instance>2<" /tmp/get)"
grep -q "drift on wg1 peer 2: allowed-ips" /tmp/siteA.log || fail "the drift is not in the agent's log"
[ "$(check_drift siteA true)" = "1 1 0" ] || fail "allowed-ips drift not repaired: $(cat /tmp/reply)"
nsx siteA wg show wg1 allowed-ips | grep "^$P2" | grep -q 10.0.5.0/24 || fail "peer 2's allowed-ips not put back"
[ -z "$(drift_of siteA 2)" ] || fail "drift still reported after the repair"
[ "$(handshake siteA "$PB")" = "$H1" ] || fail "peer 1's handshake changed in the repair of peer 2"

step "drift: wg set removes a peer"
nsx siteA wg set wg1 peer "$P2" remove || fail "wg set remove"
[ "$(check_drift siteA false)" = "1 0 0" ] || fail "peer removal not found: $(cat /tmp/reply)"
[ "$(drift_of siteA 2)" = peer-missing ] || fail "no peer-missing drift for peer 2 in <get>"
[ "$(check_drift siteA true)" = "1 1 0" ] || fail "peer removal not repaired: $(cat /tmp/reply)"
nsx siteA wg show wg1 allowed-ips | grep "^$P2" | grep -q 10.0.5.0/24 || fail "peer 2 not put back"
[ "$(handshake siteA "$PB")" = "$H1" ] || fail "peer 1's handshake changed when peer 2 was put back"
ping_ok hostA 10.0.2.10 || fail "no traffic after the peer repair"

step "drift: ip link del wg1, re-created whole by the repair"
ip -n siteA link del wg1 || fail "ip link del wg1"
[ "$(check_drift siteA false)" = "1 0 0" ] || fail "deleted interface not found: $(cat /tmp/reply)"
get siteA
grep -v '^<peer>' /tmp/get | grep -q '<item>interface-missing</item>' || fail "no interface-missing drift in <get>"
[ "$(check_drift siteA true)" = "1 1 0" ] || fail "deleted interface not repaired: $(cat /tmp/reply)"
ip -n siteA -d link show wg1 | grep -q wireguard || fail "wg1 not re-created as a kernel wireguard link"
[ "$(nsx siteA wg show wg1 public-key)" = "$PA" ] || fail "re-created wg1 has another key"
nsx siteA wg show wg1 peers | grep -q "^$P2" || fail "re-created wg1 lacks peer 2"
ping_ok hostA 10.0.2.10 || fail "no traffic through the re-created wg1"
[ "$(check_drift siteA false)" = "0 0 0" ] || fail "drift left after re-creating wg1: $(cat /tmp/reply)"

step "drift: site B moves to another port, site A's peer 1 roams: not drift"
commit siteB '<wireguard><instance>1</instance><listen-port>51830</listen-port></wireguard>' ||
  fail "siteB: listen-port 51830: $(cat /tmp/reply)"
ping_ok hostB 10.0.1.10 || fail "no traffic from site B's new port"
nsx siteA wg show wg1 endpoints | grep "^$PB" | grep -q 198.51.100.1:51830 ||
  fail "site A's peer 1 did not roam: $(nsx siteA wg show wg1 endpoints)"
[ "$(check_drift siteA false)" = "0 0 0" ] || fail "a roamed endpoint was reported as drift: $(cat /tmp/reply)"

step "drift: an interface deleted behind the agent's back can still be removed from running"
ip -n siteA link del wg1 || fail "ip link del wg1 (again)"
commit siteA '<wireguard xmlns:nc="urn:ietf:params:xml:ns:netconf:base:1.0" nc:operation="delete"><instance>1</instance></wireguard>' ||
  fail "siteA: deleting the missing wg1 from running failed: $(cat /tmp/reply)"
[ "$(check_drift siteA false)" = "0 0 0" ] || fail "drift after wg1 left running: $(cat /tmp/reply)"

echo "== [$(cut -d' ' -f1 /proc/uptime)s] done (test took from ${T0}s)"
echo PASS
