"""ncclient (paramiko) against the agent: the main NETCONF flows, as an
orchestrator or an Ansible netconf module would drive them."""

import pytest
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.transport.session import NetconfBase

NS = "urn:wgnetconf:test"


def server(name, address, port=None):
    port_xml = f"<port>{port}</port>" if port is not None else ""
    return (
        f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        f'<servers xmlns="{NS}"><server><name>{name}</name>'
        f"<address>{address}</address>{port_xml}</server></servers></config>"
    )


def via_sshd(sshd, **kw):
    """ncclient with its defaults (agent, keys in ~/.ssh, then password)."""
    return manager.connect(
        host="127.0.0.1",
        port=sshd["port"],
        username=sshd["user"],
        password=sshd["password"],
        hostkey_verify=False,
        timeout=30,
        **kw,
    )


def via_builtin(agent, **kw):
    return manager.connect(
        host="127.0.0.1",
        port=agent.port,
        username="admin",
        hostkey_verify=False,
        timeout=30,
        allow_agent=False,
        look_for_keys=False,
        **kw,
    )


def test_default_auth_through_sshd_with_an_unauthorised_key(agent, sshd, home_with_unauthorised_key):
    # paramiko tries ~/.ssh/id_ed25519 (unknown to the server), then the
    # password, on the same connection.
    with via_sshd(sshd) as m:
        assert m.session_id is not None
        caps = list(m.server_capabilities)
        assert "urn:ietf:params:netconf:capability:candidate:1.0" in caps
        assert any("module=wgnetconf-test" in c for c in caps)
        # Both sides speak base:1.1, so the session runs chunked framing.
        assert m._session._base == NetconfBase.BASE_11
        reply = m.get_config(source="running")
        assert reply.ok


def test_builtin_ssh_with_key_and_with_password(agent, home_with_unauthorised_key):
    with via_builtin(agent, key_filename=str(agent.key)) as m:
        assert m.get_config(source="running").ok
    with via_builtin(agent, password=agent.password) as m:
        assert m.get_config(source="running").ok


def test_edit_candidate_commit_and_read_back_with_filter(agent, sshd, home_with_unauthorised_key):
    with via_sshd(sshd) as m:
        m.edit_config(target="candidate", config=server("web", "10.0.0.1", 8081))
        m.edit_config(target="candidate", config=server("db", "10.0.0.2", 5432))
        # Not in running before commit.
        before = m.get_config(source="running", filter=("subtree", f'<servers xmlns="{NS}"/>'))
        assert "web" not in before.data_xml
        m.commit()
        # ncclient sends <filter> without a namespace inside <get>.
        got = m.get(filter=("subtree", f'<servers xmlns="{NS}"><server><name>db</name></server></servers>'))
        assert "<name>db</name>" in got.data_xml
        assert "5432" in got.data_xml
        assert "web" not in got.data_xml


def test_rejected_edit_gives_rpc_error_fields_and_changes_nothing(agent, home_with_unauthorised_key):
    with via_builtin(agent, key_filename=str(agent.key)) as m:
        m.edit_config(target="candidate", config=server("a", "x"))
        m.commit()
        # Both at the default port 8080: unique violation, refused at once
        # on running (on the candidate it waits for commit, RFC 7950 §8.3.3).
        with pytest.raises(RPCError) as e:
            m.edit_config(target="running", config=server("b", "y"))
        assert e.value.tag == "operation-failed"
        assert e.value.type == "application"
        assert e.value.app_tag == "data-not-unique"
        assert "server" in e.value.path
        # Running is untouched: b never appears.
        got = m.get_config(source="running").data_xml
        assert "<name>b</name>" not in got
        assert "<name>a</name>" in got


def test_locks_between_two_clients(agent, sshd, home_with_unauthorised_key):
    with via_sshd(sshd) as a, via_builtin(agent, key_filename=str(agent.key)) as b:
        a.lock(target="candidate")
        with pytest.raises(RPCError) as e:
            b.lock(target="candidate")
        assert e.value.tag == "lock-denied"
        assert str(a.session_id) in e.value.info
        with pytest.raises(RPCError) as e:
            b.edit_config(target="candidate", config=server("z", "q"))
        assert e.value.tag == "in-use"
        a.edit_config(target="candidate", config=server("z", "q"))
        # Unlock without commit discards the lock holder's changes.
        a.unlock(target="candidate")
        assert "<name>z</name>" not in b.get_config(source="candidate").data_xml
        b.lock(target="candidate")
        b.unlock(target="candidate")


def test_validate_discard_copy_and_delete_startup(agent, home_with_unauthorised_key):
    with via_builtin(agent, key_filename=str(agent.key)) as m:
        m.edit_config(target="candidate", config=server("v", "1.2.3.4"))
        assert m.validate(source="candidate").ok
        m.discard_changes()
        assert "<name>v</name>" not in m.get_config(source="candidate").data_xml
        m.edit_config(target="running", config=server("r", "5.6.7.8"))
        m.copy_config(source="running", target="startup")
        assert "<name>r</name>" in m.get_config(source="startup").data_xml
        m.delete_config(target="startup")
        assert "<name>r</name>" not in m.get_config(source="startup").data_xml


def test_subscription_receives_config_change_from_another_session(agent, sshd, home_with_unauthorised_key):
    # RFC 5277 + RFC 6470: one session subscribes, another commits.
    with via_sshd(sshd) as sub, via_builtin(agent, key_filename=str(agent.key)) as other:
        assert ":notification" in sub.server_capabilities
        assert ":interleave" in sub.server_capabilities
        sub.create_subscription()
        # Interleave: rpcs keep working on the subscribed session.
        assert sub.get_config(source="running").ok
        other.edit_config(target="candidate", config=server("notified", "10.0.0.9", 8099))
        other.commit()
        deadline = 20
        got = None
        while deadline > 0:
            n = sub.take_notification(block=True, timeout=5)
            deadline -= 5
            if n is not None and "netconf-config-change" in n.notification_xml:
                got = n.notification_xml
                break
        assert got is not None, "no netconf-config-change"
        assert "<datastore>running</datastore>" in got
        assert "<username>admin</username>" in got
        assert f"<session-id>{other.session_id}</session-id>" in got
        assert "<operation>create</operation>" in got
