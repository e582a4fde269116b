"""ncclient against the datastore rules of RFC 6241 and RFC 7950 that
clients notice (issue 11): no lock on running while another session's
confirmed commit is pending (§7.5), a deleted startup reads as empty
(Ansible's netconf_get source=startup), and constraints on the candidate
enforced at validate/commit, not at each edit (RFC 7950 §8.3.3)."""

import re

import pytest
from ncclient.operations.rpc import RPCError

NS = "urn:wgnetconf:test"
TUNNEL = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel"


def connect(agent):
    return agent.admin_session()


def server(name, address):
    return (
        f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        f'<servers xmlns="{NS}"><server><name>{name}</name>'
        f"<address>{address}</address></server></servers></config>"
    )


def info_session_id(error):
    """The session-id of an rpc-error's error-info."""
    found = re.search(r"session-id>\s*(\d+)\s*<", error.info or "")
    assert found, f"no session-id in error-info {error.info!r}"
    return int(found.group(1))


def lock_denied(m):
    with pytest.raises(RPCError) as e:
        m.lock(target="running")
    assert e.value.tag == "lock-denied", e.value
    assert e.value.type == "protocol"
    return info_session_id(e.value)


def test_no_lock_on_running_during_another_sessions_confirmed_commit(agent):
    with connect(agent) as a, connect(agent) as b:
        a.edit_config(target="candidate", config=server("cc", "10.0.0.1"))
        a.commit(confirmed=True, timeout="300")
        assert lock_denied(b) == int(a.session_id)
        # The issuing session itself may lock.
        a.lock(target="running")
        a.unlock(target="running")
        # Confirmed: anyone may lock again.
        a.commit()
        b.lock(target="running")
        b.unlock(target="running")
        assert "<name>cc</name>" in b.get_config(source="running").data_xml


def test_persistent_confirmed_commit_blocks_running_lock_after_its_session(agent):
    with connect(agent) as b:
        a = connect(agent)
        a.edit_config(target="candidate", config=server("pc", "10.0.0.2"))
        a.commit(confirmed=True, timeout="300", persist="p-11")
        a.lock(target="running")
        a.unlock(target="running")
        assert lock_denied(b) == int(a.session_id)
        # The issuing session ends (kill-session answers once its locks and
        # commits are dealt with): the commit stays, and nobody may lock.
        b.kill_session(a.session_id)
        assert lock_denied(b) == 0
        with connect(agent) as c:
            assert lock_denied(c) == 0
            c.cancel_commit(persist_id="p-11")
            c.lock(target="running")
            c.unlock(target="running")
            assert "<name>pc</name>" not in c.get_config(source="running").data_xml
        b.lock(target="running")
        b.unlock(target="running")


def test_get_config_of_deleted_startup_is_empty_data(agent):
    with connect(agent) as m:
        m.edit_config(target="running", config=server("s", "10.0.0.3"))
        m.copy_config(source="running", target="startup")
        assert "<name>s</name>" in m.get_config(source="startup").data_xml
        m.delete_config(target="startup")
        reply = m.get_config(source="startup")
        assert reply.ok
        data = reply.data_ele
        assert data.tag.endswith("}data"), reply.xml
        assert len(data) == 0 and not (data.text or "").strip(), reply.xml


def wireguard(*ports):
    """wireguard 1, 2, ... with these listen-ports (None: leave it out)."""
    entries = "".join(
        f"<wireguard><instance>{i}</instance><listen-port>{p}</listen-port></wireguard>"
        for i, p in enumerate(ports, start=1)
        if p is not None
    )
    return (
        f'<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        f'<tunnel xmlns="{TUNNEL}">{entries}</tunnel></config>'
    )


def listen_ports(m, source):
    data = m.get_config(source=source).data_ele
    out = {}
    for w in data.iter(f"{{{TUNNEL}}}wireguard"):
        out[int(w.findtext(f"{{{TUNNEL}}}instance"))] = int(w.findtext(f"{{{TUNNEL}}}listen-port"))
    return out


# Without a plugin (stored and validated only) and with the WireGuard plugin
# (its in-memory backend): both commit paths see the same rule.
@pytest.mark.parametrize("which", ["agent", "agent_wg"])
def test_listen_ports_swapped_on_the_candidate_in_two_edits(request, which):
    agent = request.getfixturevalue(which)
    with connect(agent) as m:
        m.edit_config(target="candidate", config=wireguard(51820, 51821))
        m.commit()
        # Each edit alone collides on `unique listen-port`: the candidate
        # may hold that until validate/commit (RFC 7950 §8.3.3).
        m.edit_config(target="candidate", config=wireguard(51821, None))
        m.edit_config(target="candidate", config=wireguard(None, 51820))
        assert m.validate(source="candidate").ok
        m.commit()
        assert listen_ports(m, "running") == {1: 51821, 2: 51820}


@pytest.mark.parametrize("which", ["agent", "agent_wg"])
def test_invalid_candidate_reported_by_validate_and_refused_by_commit(request, which):
    agent = request.getfixturevalue(which)
    with connect(agent) as m:
        m.edit_config(target="candidate", config=wireguard(51820, 51821))
        m.commit()
        m.edit_config(target="candidate", config=wireguard(51821, None))
        errors = []
        for rpc in (lambda: m.validate(source="candidate"), m.commit):
            with pytest.raises(RPCError) as e:
                rpc()
            errors.append(e.value)
        for e in errors:
            assert e.tag == "operation-failed", e
            assert e.type == "application"
            assert e.app_tag == "data-not-unique"
            assert "wireguard" in e.path
        assert listen_ports(m, "running") == {1: 51820, 2: 51821}
        # The candidate keeps the edit for the client to fix.
        assert listen_ports(m, "candidate") == {1: 51821, 2: 51821}


def test_what_an_edit_itself_breaks_is_still_refused_on_the_candidate(agent):
    with connect(agent) as m:
        # A value out of its type's range (RFC 7950 §8.3.1): invalid-value
        # at once, nothing kept.
        with pytest.raises(RPCError) as e:
            m.edit_config(target="candidate", config=wireguard(70000))
        assert e.value.tag == "invalid-value", e.value
        assert listen_ports(m, "candidate") == {}
