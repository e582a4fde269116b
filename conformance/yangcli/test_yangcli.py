"""Debian's yangcli (yuma123, libssh2): a second, independent NETCONF client
does an edit + commit that another client then reads back."""

import subprocess

from ncclient import manager

from conftest import REPO


def test_yangcli_merge_commit_and_read_back(agent, tmp_path):
    script = tmp_path / "edit.yc"
    script.write_text("merge /system/hostname value=yangcli1\ncommit\nsget /system\n")
    out = subprocess.run(
        [
            "yangcli",
            "--server=127.0.0.1",
            f"--ncport={agent.port}",
            "--user=admin",
            f"--password={agent.password}",
            "--batch-mode",
            f"--run-script={script}",
            f"--modpath={REPO}/tests/yang:/usr/share/yuma/modules/ietf",
            "--autoload=false",
            "--module=wgnetconf-test",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "hostname yangcli1" in out.stdout, out.stdout
    assert "rpc-error" not in out.stdout
    # Committed to running, as another client sees it.
    with manager.connect(
        host="127.0.0.1",
        port=agent.port,
        username="admin",
        key_filename=str(agent.key),
        allow_agent=False,
        look_for_keys=False,
        hostkey_verify=False,
    ) as m:
        data = m.get_config(source="running").data_xml
        assert "<hostname>yangcli1</hostname>" in data
