"""ncclient against the agent's self-description and read options: get-schema
(whose text pyang must parse), ietf-netconf-monitoring and the YANG library
through <get>, XPath filters as ncclient builds them, and with-defaults."""

import shutil
import subprocess
import sys
from pathlib import Path

from lxml import etree

NS = "urn:wgnetconf:test"
NCM = "urn:ietf:params:xml:ns:yang:ietf-netconf-monitoring"
YL = "urn:ietf:params:xml:ns:yang:ietf-yang-library"
IETF_DIR = "/usr/share/yuma/modules/ietf"


def connect(agent):
    return agent.admin_session()


def pyang():
    venv = Path(sys.executable).parent / "pyang"
    return str(venv) if venv.exists() else shutil.which("pyang")


def test_get_schema_text_parses_with_pyang(agent, tmp_path):
    with connect(agent) as m:
        assert any("ietf-netconf-monitoring" in c for c in m.server_capabilities)
        text = m.get_schema("wgnetconf-tunnel").data
        assert text.lstrip().startswith("module wgnetconf-tunnel")
        path = tmp_path / "wgnetconf-tunnel.yang"
        path.write_text(text)
        res = subprocess.run(
            [pyang(), "--path", IETF_DIR, str(path)], capture_output=True, text=True
        )
        assert res.returncode == 0, res.stdout + res.stderr
        # A versioned request, and an unknown module.
        assert m.get_schema("wgnetconf-tunnel", version="2026-12-05").data == text
        try:
            m.get_schema("no-such-module")
            raise AssertionError("get-schema of an unknown module succeeded")
        except Exception as e:  # ncclient raises RPCError
            assert "invalid-value" in str(getattr(e, "tag", "")) + str(e)


def test_monitoring_and_yang_library_through_get(agent):
    with connect(agent) as m:
        state = m.get(filter=("subtree", f'<netconf-state xmlns="{NCM}"/>')).data_ele
        ns = {"m": NCM}
        sids = state.xpath("//m:sessions/m:session/m:session-id/text()", namespaces=ns)
        assert str(m.session_id) in sids
        users = state.xpath(
            f"//m:session[m:session-id='{m.session_id}']/m:username/text()", namespaces=ns
        )
        assert users == ["admin"]
        idents = set(state.xpath("//m:schemas/m:schema/m:identifier/text()", namespaces=ns))
        assert {"wgnetconf-test", "ietf-netconf", "ietf-yang-library"} <= idents

        lib = m.get(filter=("subtree", f'<yang-library xmlns="{YL}"/>')).data_ele
        mods = {
            (e.findtext(f"{{{YL}}}name"), e.findtext(f"{{{YL}}}revision"))
            for e in lib.iter(f"{{{YL}}}module")
        }
        assert ("wgnetconf-test", "2026-11-25") in mods
        cap = [c for c in m.server_capabilities if "yang-library:1.1" in c]
        assert len(cap) == 1 and "revision=2019-01-04" in cap[0]


def test_xpath_filter_as_ncclient_sends_it(agent):
    cfg = (
        '<config xmlns="urn:ietf:params:xml:ns:netconf:base:1.0">'
        f'<servers xmlns="{NS}">'
        "<server><name>web</name><address>10.0.0.1</address><port>81</port></server>"
        "<server><name>db</name><address>10.0.0.2</address></server>"
        "</servers></config>"
    )
    with connect(agent) as m:
        m.edit_config(target="running", config=cfg)
        got = m.get_config(
            source="running",
            filter=("xpath", ({"t": NS}, "/t:servers/t:server[t:name='web']/t:port")),
        )
        xml = got.data_xml
        assert "<port>81</port>" in xml and "<name>web</name>" in xml
        assert "db" not in xml and "10.0.0.1" not in xml
        # with-defaults through ncclient's own parameter.
        full = m.get_config(
            source="running",
            filter=("xpath", ({"t": NS}, "/t:servers/t:server[t:name='db']")),
            with_defaults="report-all",
        ).data_ele
        port = full.xpath("//t:server[t:name='db']/t:port/text()", namespaces={"t": NS})
        assert port == ["8080"], etree.tostring(full)
        trimmed = m.get_config(source="running", with_defaults="trim").data_xml
        assert "8080" not in trimmed and "<port>81</port>" in trimmed
