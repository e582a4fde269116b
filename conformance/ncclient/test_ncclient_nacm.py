"""ncclient against access control (RFC 8341, issue 13) on the WireGuard
model (plugin on its memory backend), through the built-in SSH server with
password authentication (`look_for_keys=False`, as README "Connecting"
asks of paramiko clients there):

- `reader`, a user without groups and so without rules: reads the tunnels
  but no private or preshared key (`nacm:default-deny-all`), cannot learn a
  key by a content-match filter, and gets `access-denied` for edit-config,
  kill-session and delete-config;
- `admin` (`[[users]] groups = ["admin"]`, the bootstrap rule-list that
  permits all) does all of it;
- `writer`, in group `wg1-writers` whose rule-list (tests/netconf_nacm.rs
  `writer_rules`, the README's example) permits interface 1 only, with its
  key leaves denied first: edits interface 1, not 2, reads no key, and may
  not commit candidate edits another user made outside interface 1;
- `enable-nacm false` lifts all of it.

The same policy is checked with Rust sessions in tests/netconf_nacm.rs;
this is what ncclient users see of it (RPCError type and tag)."""

import secrets
import shutil
import tempfile

import pytest
from ncclient import manager
from ncclient.operations.rpc import RPCError

from conftest import Agent

TUN = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
# Interface 1's private key, peer 1's preshared key, interface 2's private
# key: what a user without rules must never see.
K1 = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
K3 = "KCm4ZjBbz6dGPpEPPsw9DWQJ+ZslLpPyjGYYnIdlgEQ="
K4 = "wG8ytdrTm3P6ECG7cSmbJU7jIWgwbCtPHjMRf/IeXFs="
SECRETS = (K1, K3, K4)
# Peer 1's public key: readable by all.
K2 = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
K5 = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

TUNNELS = f"""<config xmlns="{NC}"><tunnel xmlns="{TUN}">
<wireguard><instance>1</instance><description>one</description>
<private-key>{K1}</private-key><listen-port>51820</listen-port>
<peer><instance>1</instance><description>p1</description>
<public-key>{K2}</public-key><preshared-key>{K3}</preshared-key></peer>
</wireguard>
<wireguard><instance>2</instance><description>two</description>
<private-key>{K4}</private-key><listen-port>51821</listen-port></wireguard>
</tunnel></config>"""


def writer_rules():
    """The README's per-interface writer: key leaves denied first (a permit
    on the interface would override default-deny-all), then interface 1."""
    wg1 = "/wgt:tunnel/wgt:wireguard[wgt:instance='1']"

    def rule(name, path, action):
        return (
            f"<rule><name>{name}</name><module-name>wgnetconf-tunnel</module-name>"
            f'<path xmlns:wgt="{TUN}">{path}</path>'
            f"<access-operations>*</access-operations><action>{action}</action></rule>"
        )

    return (
        f'<config xmlns="{NC}"><nacm xmlns="{NACM}"><rule-list><name>wg1-writers</name>'
        f"<group>wg1-writers</group>"
        + rule("no-private-key", f"{wg1}/wgt:private-key", "deny")
        + rule("no-preshared-key", f"{wg1}/wgt:peer/wgt:preshared-key", "deny")
        + rule("wg1", wg1, "permit")
        + "</rule-list></nacm></config>"
    )


def description(instance, text):
    return (
        f'<config xmlns="{NC}"><tunnel xmlns="{TUN}"><wireguard>'
        f"<instance>{instance}</instance><description>{text}</description>"
        f"</wireguard></tunnel></config>"
    )


TUNNEL_FILTER = ("subtree", f'<tunnel xmlns="{TUN}"/>')


class Site:
    """The agent and its three users' passwords."""

    def __init__(self, agent, passwords):
        self.agent = agent
        self.passwords = passwords

    def connect(self, user):
        password = self.agent.password if user == "admin" else self.passwords[user]
        return manager.connect(
            host="127.0.0.1",
            port=self.agent.port,
            username=user,
            password=password,
            hostkey_verify=False,
            timeout=30,
            allow_agent=False,
            look_for_keys=False,
        )


@pytest.fixture
def site():
    passwords = {"reader": secrets.token_urlsafe(18), "writer": secrets.token_urlsafe(18)}
    root = tempfile.mkdtemp(prefix="wgnc-conf-", dir="/tmp")
    try:
        agent = Agent(
            root,
            wireguard="memory",
            users=[
                {"name": "reader", "groups": [], "password": passwords["reader"]},
                {"name": "writer", "groups": ["wg1-writers"], "password": passwords["writer"]},
            ],
        )
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    try:
        s = Site(agent, passwords)
        with s.connect("admin") as m:
            m.edit_config(target="running", config=TUNNELS)
            m.edit_config(target="running", config=writer_rules())
        yield s
    finally:
        agent.stop()
        shutil.rmtree(root, ignore_errors=True)


def secrets_in(text):
    return [k for k in SECRETS if k in text]


def denied(call, error_type):
    """Runs `call`, which must fail with access-denied of `error_type`."""
    with pytest.raises(RPCError) as e:
        call()
    assert (e.value.type, e.value.tag) == (error_type, "access-denied"), e.value
    return e.value


def descriptions(m):
    return m.get_config(source="running", filter=TUNNEL_FILTER).data_xml


def test_reader_without_rules_reads_tunnels_but_no_key_and_writes_nothing(site):
    with site.connect("reader") as r, site.connect("admin") as a:
        conf = r.get_config(source="running", filter=TUNNEL_FILTER).data_xml
        assert "<description>one</description>" in conf, conf
        assert "<description>two</description>" in conf, conf
        assert K2 in conf, "a peer's public key is readable"
        assert secrets_in(conf) == [], conf
        # <get> (running plus the plugin's state) and the whole running too.
        assert secrets_in(r.get().data_xml) == []
        assert secrets_in(r.get_config(source="running").data_xml) == []
        # The admin reads the keys.
        assert sorted(secrets_in(a.get_config(source="running").data_xml)) == sorted(SECRETS)

        # A content match on the private key tells the reader nothing; the
        # same filter selects interface 1 for the admin.
        guess = ("subtree", f'<tunnel xmlns="{TUN}"><wireguard><private-key>{K1}</private-key></wireguard></tunnel>')
        assert "wireguard" not in r.get_config(source="running", filter=guess).data_xml
        assert "wireguard" not in r.get(filter=guess).data_xml
        hit = a.get_config(source="running", filter=guess).data_xml
        assert "<instance>1</instance>" in hit and K1 in hit, hit

        # Writes: not even a description, to running or the candidate.
        e = denied(lambda: r.edit_config(target="running", config=description(2, "x")), "application")
        assert "wireguard" in (e.path or ""), e.path
        denied(lambda: r.edit_config(target="candidate", config=description(3, "new")), "application")
        # Operations default-deny-all protects.
        denied(lambda: r.kill_session(a.session_id), "protocol")
        denied(lambda: r.delete_config(target="startup"), "protocol")
        # Nothing changed, and the admin's session is alive.
        assert "<description>two</description>" in descriptions(a)
        assert "<instance>3</instance>" not in a.get_config(source="candidate").data_xml

        # The admin does all of it.
        a.edit_config(target="running", config=description(2, "by admin"))
        assert "<description>by admin</description>" in descriptions(r)
        a.copy_config(source="running", target="startup")
        a.delete_config(target="startup")
        victim = site.connect("reader")
        try:
            a.kill_session(victim.session_id)
            with pytest.raises(Exception):
                victim.get_config(source="running")
        finally:
            victim._session.close()


def test_writer_edits_its_interface_only_and_reads_no_key(site):
    with site.connect("writer") as w, site.connect("admin") as a:
        w.edit_config(target="running", config=description(1, "mine"))
        denied(lambda: w.edit_config(target="running", config=description(2, "theirs")), "application")
        # A new peer in its interface.
        w.edit_config(
            target="running",
            config=(
                f'<config xmlns="{NC}"><tunnel xmlns="{TUN}"><wireguard><instance>1</instance>'
                f"<peer><instance>2</instance><public-key>{K5}</public-key></peer>"
                f"</wireguard></tunnel></config>"
            ),
        )
        # Its interface's key: neither written nor read; nor deleted with
        # the interface.
        denied(
            lambda: w.edit_config(
                target="running",
                config=(
                    f'<config xmlns="{NC}"><tunnel xmlns="{TUN}"><wireguard><instance>1</instance>'
                    f"<private-key>{K4}</private-key></wireguard></tunnel></config>"
                ),
            ),
            "application",
        )
        denied(
            lambda: w.edit_config(
                target="running",
                config=(
                    f'<config xmlns="{NC}"><tunnel xmlns="{TUN}" xmlns:nc="{NC}">'
                    f'<wireguard nc:operation="delete"><instance>1</instance></wireguard>'
                    f"</tunnel></config>"
                ),
            ),
            "application",
        )
        mine = w.get_config(source="running", filter=TUNNEL_FILTER).data_xml
        assert secrets_in(mine) == [], mine
        assert "<description>mine</description>" in mine and K5 in mine, mine
        theirs = a.get_config(source="running", filter=TUNNEL_FILTER).data_xml
        assert K1 in theirs, "interface 1 keeps its key"
        assert "<description>two</description>" in theirs and "theirs" not in theirs


def test_commit_needs_the_committers_access_to_every_change(site):
    with site.connect("writer") as w, site.connect("admin") as a:
        # The admin stages a change outside interface 1 in the shared
        # candidate; the writer may not commit it.
        a.edit_config(target="candidate", config=description(2, "staged by admin"))
        denied(lambda: w.commit(), "application")
        assert "staged by admin" not in descriptions(a)
        # The writer's own edit of interface 1 alone commits.
        a.discard_changes()
        w.edit_config(target="candidate", config=description(1, "staged by writer"))
        w.commit()
        assert "<description>staged by writer</description>" in descriptions(a)
        # And the admin commits what it staged.
        a.edit_config(target="candidate", config=description(2, "staged by admin"))
        a.commit()
        assert "<description>staged by admin</description>" in descriptions(w)


def test_enable_nacm_false_turns_access_control_off(site):
    with site.connect("reader") as r, site.connect("admin") as a:
        assert secrets_in(r.get_config(source="running").data_xml) == []
        denied(lambda: r.edit_config(target="running", config=description(2, "x")), "application")
        a.edit_config(
            target="running",
            config=f'<config xmlns="{NC}"><nacm xmlns="{NACM}"><enable-nacm>false</enable-nacm></nacm></config>',
        )
        assert sorted(secrets_in(r.get_config(source="running").data_xml)) == sorted(SECRETS)
        r.edit_config(target="running", config=description(2, "by reader"))
        assert "<description>by reader</description>" in descriptions(a)
