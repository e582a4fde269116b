"""Our YANG modules pass yanglint and pyang --lint without warnings."""

import subprocess

from conftest import REPO


def test_yang_lint():
    out = subprocess.run([str(REPO / "yang/lint.sh")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
