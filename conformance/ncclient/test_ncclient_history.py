"""Commit history, rollback and compare (issue 16) as an ncclient user sees
them, through the built-in SSH server with passwords, on the WireGuard
model (plugin on its memory backend):

- `<rollback>` to before commit N gives a `<get-config>` byte-identical to
  the one read before commit N;
- the history (ids, comments) is the same after kill -9 and after a clean
  restart of the agent;
- `<compare>`'s `<config>`, sent with `<edit-config>`, turns the rolled-back
  configuration into the compared one again;
- `oper`, a user without groups (no NACM rule, so keys are denied by
  `nacm:default-deny-all`), sees no key in `<compare>` or the history and
  may not roll back.

tests/netconf_history.rs checks the same with the Rust client."""

import secrets
import shutil
import tempfile

import pytest
from lxml import etree
from ncclient import manager
from ncclient.operations.rpc import RPCError
from ncclient.xml_ import to_ele

from conftest import Agent

TUN = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-tunnel"
AGENT = "urn:wgnetconf:params:xml:ns:yang:wgnetconf-agent"
NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
K1 = "YAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk="
K2 = "HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw="


@pytest.fixture
def hist_agent():
    root = tempfile.mkdtemp(prefix="wgnc-conf-", dir="/tmp")
    password = secrets.token_urlsafe(18)
    a = Agent(root, wireguard="memory", users=[{"name": "oper", "groups": [], "password": password}])
    a.oper_password = password
    try:
        yield a
    finally:
        a.stop()
        shutil.rmtree(root, ignore_errors=True)


def session(agent, user="admin", password=None):
    return manager.connect(
        host="127.0.0.1",
        port=agent.port,
        username=user,
        password=password or agent.password,
        hostkey_verify=False,
        timeout=30,
        allow_agent=False,
        look_for_keys=False,
    )


def wg(inner):
    return f'<config xmlns="{NC}"><tunnel xmlns="{TUN}">{inner}</tunnel></config>'


def running(m):
    return m.get_config(source="running").data_xml


def history(m):
    """[(id, comment)] of the history, oldest first."""
    r = m.get(filter=("subtree", f'<agent xmlns="{AGENT}"><history/></agent>'))
    out = []
    for c in r.data_ele.iter(f"{{{AGENT}}}commit"):
        out.append((int(c.findtext(f"{{{AGENT}}}id")), c.findtext(f"{{{AGENT}}}comment")))
    return out


def rpc(m, xml):
    return m.dispatch(to_ele(xml))


def compare_config(m, since):
    """`<compare>` from before commit `since` to running, as an
    `<edit-config>` `<config>` element (its children moved into the base
    namespace's `config`)."""
    reply = rpc(m, f'<compare xmlns="{AGENT}"><from>{since}</from></compare>')
    got = etree.fromstring(reply.xml.encode()).find(f".//{{{AGENT}}}config")
    assert got is not None, reply.xml
    config = etree.Element(f"{{{NC}}}config", nsmap={None: NC})
    for child in got:
        config.append(child)
    return reply.xml, config


def test_rollback_restart_and_compare(hist_agent):
    m = session(hist_agent)
    m.edit_config(
        target="running",
        config=wg(f"<wireguard><instance>1</instance><description>one</description><private-key>{K1}</private-key></wireguard>"),
    )
    before_n = running(m)
    m.edit_config(
        target="candidate",
        config=wg("<wireguard><instance>2</instance><description>two</description><listen-port>51822</listen-port></wireguard>"),
    )
    rpc(m, f'<commit xmlns="{NC}"><comment xmlns="{AGENT}">add two</comment></commit>')
    m.edit_config(
        target="running",
        config=wg(f"<wireguard><instance>1</instance><description>uno</description><private-key>{K2}</private-key></wireguard>"),
    )
    h = history(m)
    n = next(i for i, c in h if c == "add two")
    assert h[-1][0] > n, h
    now = running(m)
    m.close_session()

    # The history survives kill -9, and a clean restart.
    hist_agent.restart(kill9=True)
    m = session(hist_agent)
    assert history(m) == h
    assert running(m) == now
    m.close_session()
    hist_agent.restart()
    m = session(hist_agent)
    assert history(m) == h

    text, config = compare_config(m, n)
    assert "operation=" in text, text
    # Rollback to before N: byte-identical <get-config>.
    rpc(m, f'<rollback xmlns="{AGENT}"><id>{n}</id></rollback>')
    assert running(m) == before_n
    # compare's output, applied, reproduces the compared configuration.
    m.edit_config(target="running", config=config)
    assert running(m) == now
    m.close_session()


def test_operator_sees_no_key_in_compare_or_history(hist_agent):
    m = session(hist_agent)
    m.edit_config(target="running", config=wg(f"<wireguard><instance>1</instance><private-key>{K1}</private-key></wireguard>"))
    first = history(m)[-1][0]
    m.edit_config(
        target="running",
        config=wg(f"<wireguard><instance>1</instance><description>rekeyed</description><private-key>{K2}</private-key></wireguard>"),
    )
    # The admin's compare shows the key change.
    text, _ = compare_config(m, first)
    assert K2 in text, text

    op = session(hist_agent, "oper", hist_agent.oper_password)
    text, _ = compare_config(op, first)
    assert "rekeyed" in text, f"the operator's compare lacks what it may read: {text}"
    hist = op.get(filter=("subtree", f'<agent xmlns="{AGENT}"/>')).xml
    assert str(first) in hist, hist
    for k in (K1, K2):
        assert k not in text, f"a key in compare: {text}"
        assert k not in hist, f"a key in the history: {hist}"
    with pytest.raises(RPCError) as e:
        rpc(op, f'<rollback xmlns="{AGENT}"><id>{first}</id></rollback>')
    assert e.value.type == "application" and e.value.tag == "access-denied", e.value
    op.close_session()
    m.close_session()
