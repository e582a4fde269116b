"""Key rotation across the two sites of Figure 1 with Ansible (issue 16):
rotate.yml rotates site A's key with netconf_rpc and gives site B's peer the
new public key with netconf_config, in one run; afterwards the tunnel
carries traffic again and A's running and startup hold the new key. And
with ncclient: `<rollback>` of a rotation puts the old key back in running
(byte-identical `<get-config>`) and in the data plane (read from the
device's UAPI socket), and the tunnel, broken by the rotation, carries
traffic again.

Each site is a `wgnetconf serve` on the boringtun (userspace) backend in a
network namespace of its own, the two joined by a veth pair (the
"internet", 203.0.113.1 and 198.51.100.1 as in README "Site-to-site
example"); each site network is stood for by its router's address on the
namespace's loopback (10.0.1.1, 10.0.2.1), and traffic is a ping from
10.0.1.1 to 10.0.2.1, routed into wg1 by the route the agent adds for the
peer's allowed-ip. Ansible and ncclient reach each agent through an OpenSSH
sshd outside the namespaces whose relay connects to the agent's Unix socket
(a filesystem socket: not confined by the network namespace), as a system
user made for the run. Namespaces, agents, sshds, the user and the files
are removed also when the test fails. Needs root and /dev/net/tun: skipped
without them, failed instead under WGNETCONF_REQUIRE_ALL=1."""

import base64
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from ncclient import manager
from ncclient.xml_ import to_ele

from conftest import Agent, add_system_user, remove_system_user, start_sshd, stop_pid

from test_ansible import playbook_cmd, run

HERE = Path(__file__).resolve().parent
TUN = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
AGENT = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent"
SITES = {
    # name: (public address, the other's public network, site address, wg1 address)
    "a": ("203.0.113.1/24", "198.51.100.0/24", "10.0.1.1", "10.255.0.1/24"),
    "b": ("198.51.100.1/24", "203.0.113.0/24", "10.0.2.1", "10.255.0.2/24"),
}
# Upper bound for the tunnel to come up (a handshake); never a sleep.
DEADLINE = 30


def require_namespaces():
    """Skips (or fails, under WGNETCONF_REQUIRE_ALL=1) where the sites
    cannot be built."""
    why = None
    if os.geteuid() != 0:
        why = "not root (needs network namespaces and CAP_NET_ADMIN)"
    elif not os.access("/dev/net/tun", os.R_OK | os.W_OK):
        why = "/dev/net/tun is not usable"
    elif playbook_cmd() is None:
        why = "ansible is not installed (conformance/requirements.txt)"
    else:
        why = next((f"no `{t}` command" for t in ("ip", "ping") if shutil.which(t) is None), None)
    if why:
        if os.environ.get("WGNETCONF_REQUIRE_ALL"):
            pytest.fail(f"the two-site rotation cannot run under WGNETCONF_REQUIRE_ALL: {why}")
        pytest.skip(why)


def ip(*args):
    out = subprocess.run(["ip", *args], capture_output=True, text=True)
    assert out.returncode == 0, f"ip {' '.join(args)}: {out.stderr}"


def ping(ns, src, dst):
    return (
        subprocess.run(
            ["ip", "netns", "exec", ns, "ping", "-c", "1", "-W", "1", "-I", src, dst],
            capture_output=True,
        ).returncode
        == 0
    )


def ping_until(ns, src, dst):
    """Pings until one answer (bounded by DEADLINE); whether one came."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if ping(ns, src, dst):
            return True
    return False


def connect(site):
    return manager.connect(
        host="127.0.0.1",
        port=site["port"],
        username=site["user"],
        password=site["password"],
        hostkey_verify=False,
        allow_agent=False,
        look_for_keys=False,
        timeout=30,
    )


def wg1(m, source=None):
    """wg1 of `<get-config>` (source given) or `<get>` as an XML text."""
    flt = ("subtree", f'<tunnel xmlns="{TUN}"/>')
    r = m.get_config(source=source, filter=flt) if source else m.get(filter=flt)
    return r.data_xml


def leaf(xml, name):
    m = re.search(rf"<{name}>([^<]*)</{name}>", xml)
    return m.group(1) if m else None


@pytest.fixture
def two_sites():
    require_namespaces()
    tag = f"wgr{os.getpid() % 100000}"
    user = "wgr" + secrets.token_hex(4)
    password = secrets.token_urlsafe(18)
    namespaces, agents, sshd_pids, roots = [], [], [], []
    user_added = False
    try:
        for s in SITES:
            ns = tag + s
            ip("netns", "add", ns)
            namespaces.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ns_a, ns_b = namespaces
        ip("link", "add", "inet", "netns", ns_a, "type", "veth", "peer", "name", "inet", "netns", ns_b)
        for ns, (public, other, site, _) in zip(namespaces, SITES.values()):
            ip("-n", ns, "addr", "add", public, "dev", "inet")
            ip("-n", ns, "link", "set", "inet", "up")
            ip("-n", ns, "route", "add", other, "dev", "inet")
            ip("-n", ns, "addr", "add", f"{site}/32", "dev", "lo")
        add_system_user(user, password)
        user_added = True
        sites = {}
        for ns, s in zip(namespaces, SITES):
            root = tempfile.mkdtemp(prefix=f"wgnc-rot{s}-", dir="/tmp")
            roots.append(root)
            a = Agent(root, wireguard="boringtun", users=[{"name": user, "groups": ["admin"]}], netns=ns)
            agents.append(a)
            port, pid = start_sshd(a, user, password)
            sshd_pids.append(pid)
            sites[s] = {"ns": ns, "agent": a, "port": port, "user": user, "password": password}
        yield sites
    finally:
        for pid in sshd_pids:
            stop_pid(pid)
        for a in agents:
            a.stop()
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        if user_added:
            remove_system_user(user)
        for root in roots:
            shutil.rmtree(root, ignore_errors=True)


def configure(sites):
    """Figure 1's tunnel: each site's wg1 (key generated by the agent), the
    other as peer 1; both saved to startup. Returns A's old private key."""
    ms = {s: connect(sites[s]) for s in SITES}
    try:
        public = {}
        for s, (_, _, _, addr) in SITES.items():
            ms[s].edit_config(
                target="running",
                config=f'<config xmlns="{NC}"><tunnel xmlns="{TUN}"><wireguard><instance>1</instance>'
                f"<listen-port>51820</listen-port><address>{addr}</address></wireguard></tunnel></config>",
            )
            public[s] = leaf(wg1(ms[s]), "public-key")
            assert public[s], f"no public key on site {s}"
        for s, other in (("a", "b"), ("b", "a")):
            endpoint = SITES[other][0].split("/")[0]
            net = SITES[other][2].rsplit(".", 1)[0] + ".0/24"
            ms[s].edit_config(
                target="running",
                config=f'<config xmlns="{NC}"><tunnel xmlns="{TUN}"><wireguard><instance>1</instance>'
                f"<peer><instance>1</instance><public-key>{public[other]}</public-key>"
                f"<endpoint>{endpoint}</endpoint><allowed-ip>{net}</allowed-ip></peer>"
                "</wireguard></tunnel></config>",
            )
            ms[s].copy_config(source="running", target="startup")
        return leaf(wg1(ms["a"], "running"), "private-key")
    finally:
        for m in ms.values():
            m.close_session()


def dataplane_private_key(site):
    """The private key wg1 runs with, in base64, read from the data plane
    itself: the boringtun device's UAPI socket (`get=1`, as `wg show`)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect(str(site["agent"].root / "wireguard" / "wg1.sock"))
        s.sendall(b"get=1\n\n")
        reply = b""
        while not reply.endswith(b"\n\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            reply += chunk
    m = re.search(rb"^private_key=([0-9a-f]{64})$", reply, re.M)
    assert m, reply
    return base64.b64encode(bytes.fromhex(m.group(1).decode())).decode()


def last_commit(m):
    r = m.get(filter=("subtree", f'<agent xmlns="{AGENT}"><history/></agent>'))
    return max(int(i) for i in re.findall(r"<id>([0-9]+)</id>", r.data_xml))


def inventory(tmp_path, sites):
    inv = tmp_path / "inventory.ini"
    lines = ["[sites]"]
    for s in SITES:
        lines.append(f"site_{s} ansible_host=127.0.0.1 ansible_port={sites[s]['port']}")
    site = sites["a"]
    lines += [
        "[sites:vars]",
        f"ansible_user={site['user']}",
        f"ansible_password={site['password']}",
        "ansible_connection=ansible.netcommon.netconf",
        "ansible_network_os=ansible.netcommon.default",
        f"ansible_python_interpreter={sys.executable}",
    ]
    inv.write_text("\n".join(lines) + "\n")
    return inv


def test_rotate_site_a_and_update_site_b(two_sites, home_with_unauthorised_key, tmp_path):
    sites = two_sites
    old_key = configure(sites)
    assert old_key, "no private key in A's running"
    a_src, b_dst = SITES["a"][2], SITES["b"][2]
    assert ping_until(sites["a"]["ns"], a_src, b_dst), "the tunnel never carried traffic"

    rc, out = run(tmp_path, inventory(tmp_path, sites), "rotate.yml")
    assert rc == 0, out
    assert re.search(r"^site_a\s*:.*failed=0", out, re.M), out
    assert re.search(r"^site_b\s*:.*failed=0", out, re.M), out

    ma, mb = connect(sites["a"]), connect(sites["b"])
    try:
        running, startup = wg1(ma, "running"), wg1(ma, "startup")
        new_key = leaf(running, "private-key")
        assert new_key and new_key != old_key, "A's key did not change"
        assert leaf(startup, "private-key") == new_key, "A's startup kept the old key"
        new_public = leaf(wg1(ma), "public-key")
        assert new_public in out, "the playbook did not see A's new public key"
        assert leaf(wg1(mb, "running"), "public-key") == new_public, "B's peer has not A's new key"
        assert leaf(wg1(mb, "startup"), "public-key") == new_public, "B's startup has not A's new key"
    finally:
        ma.close_session()
        mb.close_session()
    # The private keys never reached Ansible's output.
    assert old_key not in out and new_key not in out
    assert ping_until(sites["a"]["ns"], a_src, b_dst), "the tunnel does not carry traffic after the rotation"


def test_rollback_of_a_rotation_restores_the_data_plane(two_sites):
    """ncclient: A's key rotated while B keeps A's old public key (the
    tunnel cannot work), then `<rollback>` to before the rotation: A's
    `<get-config>` is byte-identical to before it, its data plane runs the
    old key again, and the tunnel carries traffic."""
    sites = two_sites
    old_key = configure(sites)
    a_src, b_dst = SITES["a"][2], SITES["b"][2]
    assert ping_until(sites["a"]["ns"], a_src, b_dst), "the tunnel never carried traffic"
    assert dataplane_private_key(sites["a"]) == old_key
    m = connect(sites["a"])
    try:
        before = m.get_config(source="running").data_xml
        m.dispatch(to_ele(f'<rotate-private-key xmlns="{AGENT}"><instance>1</instance></rotate-private-key>'))
        rotation = last_commit(m)
        new_key = leaf(wg1(m, "running"), "private-key")
        assert new_key != old_key
        assert dataplane_private_key(sites["a"]) == new_key, "the data plane did not take the new key"
        m.dispatch(to_ele(f'<rollback xmlns="{AGENT}"><id>{rotation}</id></rollback>'))
        assert m.get_config(source="running").data_xml == before
        assert dataplane_private_key(sites["a"]) == old_key, "the rollback left the new key in the data plane"
    finally:
        m.close_session()
    assert ping_until(sites["a"]["ns"], a_src, b_dst), "no traffic after the rollback"


def test_readme_shows_the_playbook():
    """README "Rotating a site's key with Ansible" shows rotate.yml as it
    is (the file this suite runs)."""
    readme = (HERE.parent.parent / "README.md").read_text()
    playbook = (HERE / "rotate.yml").read_text()
    assert f"```yaml\n{playbook}```\n" in readme, "README's copy of rotate.yml is out of date"
