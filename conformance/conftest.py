"""Fixtures for the conformance suite: a real agent, a real OpenSSH sshd in
front of it, and keys/passwords for the clients.

Everything lives in a temporary directory under /tmp (the sshd-spawned relay
runs as the unprivileged user `wgnc`, so the binary and the Unix socket must
be reachable by it), and is stopped and removed at the end, also on failure.
"""

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_YANG = REPO / "tests" / "yang"
SSHD_USER = "wgnc"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path):
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
        check=True,
    )
    return Path(str(path) + ".pub").read_text().strip()


class Agent:
    """A running `wgnetconf serve`, with what clients need to reach it."""

    def __init__(self, root, wireguard=None, users=()):
        """`wireguard`: None (the module is stored and validated only) or
        the plugin's backend; only "memory" here, which touches no host
        network. `users`: more `[[users]]` entries, each a dict with
        `name`, `groups` (a list, possibly empty) and an optional
        `password` (hashed here; without one, the user can only come
        through sshd + relay, as a system user of that name)."""
        self.root = Path(root)
        self.bin = self.root / "wgnetconf"
        shutil.copy(os.environ.get("WGNETCONF_BIN", REPO / "target/debug/wgnetconf"), self.bin)
        os.chmod(self.bin, 0o755)
        os.chmod(self.root, 0o755)
        self.sockdir = self.root / "sock"
        self.sockdir.mkdir(mode=0o755)
        self.socket = self.sockdir / "netconf.sock"
        self.password = secrets.token_urlsafe(18)
        self.key = self.root / "admin_key"
        pub = keygen(self.key)
        pw_hash = self.hash_password(self.password)
        extra = ""
        for u in users:
            groups = ", ".join(f'"{g}"' for g in u["groups"])
            extra += f'[[users]]\nname = "{u["name"]}"\ngroups = [{groups}]\n'
            if u.get("password"):
                extra += f'password_hash = "{self.hash_password(u["password"])}"\n'
        self.config = self.root / "wgnetconf.toml"
        self.config.write_text(
            f"""
state_dir = "{self.root}/state"
run_dir = "{self.root}/run"
yang_dirs = ["{TEST_YANG}"]
[ssh]
listen = ["127.0.0.1:0"]
[unix]
socket = "{self.socket}"
[wireguard]
enabled = {"true" if wireguard else "false"}
{f'backend = "{wireguard}"' if wireguard else ""}
[[users]]
name = "admin"
groups = ["admin"]
password_hash = "{pw_hash}"
authorized_keys = ["{pub}"]
[[users]]
name = "{SSHD_USER}"
groups = ["admin"]
{extra}"""
        )
        self.log = open(self.root / "agent.log", "w")
        self.proc = subprocess.Popen(
            [str(self.bin), "serve", "--config", str(self.config)],
            stdout=subprocess.PIPE,
            stderr=self.log,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"agent did not start: {line!r}; see {self.root}/agent.log")
        fields = dict(kv.split("=", 1) for kv in line.split()[1:])
        self.port = int(fields["ssh"].rsplit(":", 1)[1])

    def hash_password(self, password):
        return subprocess.run(
            [str(self.bin), "hash-password"],
            input=password + "\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def agent(tmp_path_factory):
    root = tempfile.mkdtemp(prefix="wgnc-conf-", dir="/tmp")
    a = Agent(root)
    yield a
    a.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def agent_wg(tmp_path_factory):
    """An agent with the WireGuard plugin on its in-memory backend."""
    root = tempfile.mkdtemp(prefix="wgnc-conf-", dir="/tmp")
    a = Agent(root, wireguard="memory")
    yield a
    a.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sshd(agent):
    """OpenSSH's sshd whose netconf subsystem relays to `agent`."""
    port = free_port()
    password = secrets.token_urlsafe(18)
    sshd_dir = agent.root / "sshd"
    out = subprocess.run(
        [
            str(REPO / "conformance/sshd/start-sshd.sh"),
            "--port", str(port),
            "--wgnetconf", str(agent.bin),
            "--socket", str(agent.socket),
            "--password", password,
            "--user", SSHD_USER,
            "--dir", str(sshd_dir),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"sshd did not start: {out.stderr}")
    pid = int(out.stdout.strip().splitlines()[-1])
    yield {"port": port, "user": SSHD_USER, "password": password}
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass


@pytest.fixture
def home_with_unauthorised_key(tmp_path, monkeypatch):
    """A HOME whose ~/.ssh holds a key no server knows: paramiko (ncclient's
    default look_for_keys) tries it first, then falls back to the password."""
    ssh = tmp_path / ".ssh"
    ssh.mkdir(mode=0o700)
    keygen(ssh / "id_ed25519")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    return tmp_path
