"""Ansible (ansible.netcommon netconf_config / netconf_get / netconf_rpc,
ncclient underneath) against a real agent, through OpenSSH's sshd and the
relay (paramiko's key-then-password authentication). The playbooks are in
this directory; each test writes an inventory for the fixtures' agent."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent


def playbook_cmd():
    exe = BIN / "ansible-playbook"
    if exe.exists():
        return str(exe)
    return shutil.which("ansible-playbook")


pytestmark = pytest.mark.skipif(
    playbook_cmd() is None, reason="ansible is not installed (conformance/requirements.txt)"
)


def inventory(tmp_path, sshd):
    inv = tmp_path / "inventory.ini"
    inv.write_text(
        "[wg]\n"
        f"agent ansible_host=127.0.0.1 ansible_port={sshd['port']} "
        f"ansible_user={sshd['user']} ansible_password={sshd['password']} "
        "ansible_connection=ansible.netcommon.netconf "
        "ansible_network_os=ansible.netcommon.default "
        f"ansible_python_interpreter={sys.executable}\n"
    )
    return inv


def run(tmp_path, inv, playbook, *args, env=None):
    e = dict(os.environ)
    e.update(
        {
            "PATH": f"{BIN}:{e.get('PATH', '')}",
            "LC_ALL": "C.UTF-8",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"),
            "ANSIBLE_PERSISTENT_CONTROL_PATH_DIR": str(tmp_path / "ansible-pc"),
            "ANSIBLE_PERSISTENT_COMMAND_TIMEOUT": "60",
            "ANSIBLE_PERSISTENT_CONNECT_TIMEOUT": "60",
            "ANSIBLE_FILTER_PLUGINS": str(HERE / "filter_plugins"),
        }
    )
    e.update(env or {})
    out = subprocess.run(
        [playbook_cmd(), "-i", str(inv), str(HERE / playbook), *args],
        capture_output=True,
        text=True,
        env=e,
        timeout=600,
        cwd=str(tmp_path),
    )
    return out.returncode, out.stdout + out.stderr


def recap(output):
    m = re.search(r"^agent\s*:\s*(.*)$", output, re.M)
    assert m, output
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(1))}


def test_site_playbook(agent, sshd, home_with_unauthorised_key, tmp_path):
    key = subprocess.run(
        [str(agent.bin), "genkey"], capture_output=True, text=True, check=True
    ).stdout.strip()
    inv = inventory(tmp_path, sshd)
    rc, out = run(tmp_path, inv, "site.yml", "--diff", env={"WG_TEST_PRIVATE_KEY": key})
    assert rc == 0, out
    r = recap(out)
    assert r["failed"] == 0, out
    # The rejected edit is the one ignored failure.
    assert r["ignored"] == 1, out
    # The private key went to the agent but never into the output.
    assert key not in out, "private key printed"
    assert "&lt;redacted&gt;" in out or "<redacted>" in out, out
    assert "51825" in out, out


def test_same_playbook_twice_changed_then_ok(agent, sshd, home_with_unauthorised_key, tmp_path):
    inv = inventory(tmp_path, sshd)
    rc, out = run(tmp_path, inv, "idempotent.yml")
    assert rc == 0, out
    assert recap(out)["changed"] == 1, out
    rc, out = run(tmp_path, inv, "idempotent.yml")
    assert rc == 0, out
    r = recap(out)
    assert r["changed"] == 0 and r["ok"] == 1, out


def test_rollback_playbook(agent, sshd, home_with_unauthorised_key, tmp_path):
    """rollback.yml: two commits, the history read, a netconf_rpc rollback
    to before the second; running checked by the playbook, and the
    rollback in the history with its comment."""
    inv = inventory(tmp_path, sshd)
    rc, out = run(tmp_path, inv, "rollback.yml")
    assert rc == 0, out
    assert recap(out)["failed"] == 0, out
    with agent.admin_session() as m:
        hist = m.get(
            filter=("subtree", '<agent xmlns="urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent"><history/></agent>')
        ).xml
        servers = m.get_config(source="running", filter=("subtree", '<servers xmlns="urn:wgnetconf:test"/>')).xml
    assert "undo the mistake" in hist, hist
    assert "keep" in servers and "mistake" not in servers, servers
