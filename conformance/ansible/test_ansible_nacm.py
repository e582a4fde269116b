"""Access control (RFC 8341) through Ansible (ansible.netcommon's
netconf_get / netconf_config, paramiko underneath) as one read-only and
one admin user, through OpenSSH's sshd + relay as the other Ansible tests
(paramiko's key-then-password authentication; README "Connecting").

The relay maps the sshd-authenticated system user to the agent user of the
same name, so each Ansible user is a system user of its own: made here with
a name unique to the run (no collision with `wgnc` of concurrent runs) and
removed afterwards, also when the test fails. The agent lists the admin in
group admin and the reader without groups: it reads the tunnels without any
key and its edit is refused with access-denied; the admin reads the keys
and its edit commits. The playbook is nacm.yml."""

import re
import secrets
import sys
import shutil
import tempfile

import pytest

from conftest import Agent, add_system_user, remove_system_user, start_sshd, stop_pid

from test_ansible import playbook_cmd, run

TUN = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
NACM = "urn:ietf:params:xml:ns:yang:ietf-netconf-acm"
K1 = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
K2 = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="
K3 = "KCm4ZjBbz6dGPpEPPsw9DWQJ+ZslLpPyjGYYnIdlgEQ="
K4 = "wG8ytdrTm3P6ECG7cSmbJU7jIWgwbCtPHjMRf/IeXFs="
SECRETS = (K1, K3, K4)

TUNNELS = f"""<config xmlns="{NC}"><tunnel xmlns="{TUN}">
<wireguard><instance>1</instance><description>one</description>
<private-key>{K1}</private-key><listen-port>51820</listen-port>
<peer><instance>1</instance><public-key>{K2}</public-key><preshared-key>{K3}</preshared-key></peer>
</wireguard>
<wireguard><instance>2</instance><description>two</description>
<private-key>{K4}</private-key><listen-port>51821</listen-port></wireguard>
</tunnel></config>"""

pytestmark = pytest.mark.skipif(
    playbook_cmd() is None, reason="ansible is not installed (conformance/requirements.txt)"
)


def admin_session(agent):
    """The built-in server's admin, to set up and check running."""
    return agent.admin_session()


@pytest.fixture
def two_users_via_sshd():
    """An agent (WireGuard plugin, memory backend) with two tunnels, sshd in
    front of it, and two system users: {"reader": (name, password),
    "admin": (name, password), "port": sshd's port, "agent": the agent}."""
    tag = secrets.token_hex(3)
    users = {
        "admin": (f"wgna{tag}", secrets.token_urlsafe(18)),
        "reader": (f"wgnr{tag}", secrets.token_urlsafe(18)),
    }
    root = tempfile.mkdtemp(prefix="wgnc-conf-", dir="/tmp")
    agent = sshd_pid = None
    made = []
    try:
        agent = Agent(
            root,
            wireguard="memory",
            users=[
                {"name": users["admin"][0], "groups": ["admin"]},
                {"name": users["reader"][0], "groups": []},
            ],
        )
        with admin_session(agent) as m:
            m.edit_config(target="running", config=TUNNELS)
        add_system_user(*users["reader"])
        made.append(users["reader"][0])
        # start-sshd.sh creates its user (the admin) itself.
        made.append(users["admin"][0])
        port, sshd_pid = start_sshd(agent, *users["admin"])
        yield {**users, "port": port, "agent": agent}
    finally:
        if sshd_pid is not None:
            stop_pid(sshd_pid)
        if agent is not None:
            agent.stop()
        for name in made:
            remove_system_user(name)
        shutil.rmtree(root, ignore_errors=True)


def test_read_only_and_admin_users_through_sshd(two_users_via_sshd, home_with_unauthorised_key, tmp_path):
    site = two_users_via_sshd
    inv = tmp_path / "inventory.ini"
    common = (
        f"ansible_host=127.0.0.1 ansible_port={site['port']} "
        "ansible_connection=ansible.netcommon.netconf "
        "ansible_network_os=ansible.netcommon.default "
        f"ansible_python_interpreter={sys.executable}"
    )
    inv.write_text(
        "".join(
            f"{role} ansible_user={site[role][0]} ansible_password={site[role][1]} {common}\n"
            for role in ("reader", "admin")
        )
    )
    rc, out = run(tmp_path, inv, "nacm.yml", env={"WG_TEST_SECRET_KEYS": " ".join(SECRETS)})
    assert rc == 0, out
    recaps = dict(re.findall(r"^(reader|admin)\s*:\s*(.*)$", out, re.M))
    stats = {
        role: {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
        for role, line in recaps.items()
    }
    assert stats["reader"]["failed"] == 0 and stats["reader"]["ignored"] == 1, out
    assert stats["reader"]["changed"] == 0, out
    assert stats["admin"]["failed"] == 0 and stats["admin"]["ignored"] == 0, out
    assert stats["admin"]["changed"] == 1, out
    assert not [k for k in SECRETS if k in out], "a key in Ansible's output"
    # The admin's edit is in running, the reader's is not; the reader's
    # was refused as access-denied on data (RFC 8341 §3.2 counter).
    with admin_session(site["agent"]) as m:
        conf = m.get_config(source="running", filter=("subtree", f'<tunnel xmlns="{TUN}"/>')).data_xml
        counters = m.get(filter=("subtree", f'<nacm xmlns="{NACM}"/>')).data_xml
    assert "<description>by admin</description>" in conf, conf
    assert "by reader" not in conf, conf
    assert re.search(r"denied-data-writes>\s*1\s*<", counters), counters
