"""Fixtures for the conformance suite: a real agent, a real OpenSSH sshd in
front of it, and keys/passwords for the clients.

Everything lives in a temporary directory under /tmp (the sshd-spawned relay
runs as the unprivileged user `wgnc`, so the binary and the Unix socket must
be reachable by it), and is stopped and removed at the end, also on failure.
"""

import os
import pwd
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

    def __init__(self, root, wireguard=None, users=(), netns=None):
        """`wireguard`: None (the module is stored and validated only) or
        the plugin's backend: "memory", which touches no host network, or
        "boringtun" together with `netns`, the network namespace the agent
        runs in (its UAPI sockets go under `root`; clients reach it through
        its Unix socket, e.g. sshd + relay outside the namespace: TCP
        127.0.0.1 is the namespace's own). `users`: more `[[users]]`
        entries, each a dict with `name`, `groups` (a list, possibly
        empty) and an optional
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
{f'uapi_dir = "{self.root}/wireguard"' if wireguard and wireguard != "memory" else ""}
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
        self.netns = netns
        self._spawn()

    def _spawn(self):
        self.log = open(self.root / "agent.log", "a")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen(
            [*prefix, str(self.bin), "serve", "--config", str(self.config)],
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

    def restart(self, kill9=False):
        """Stops the agent (SIGTERM, or kill -9) and starts it again on the
        same configuration and state (a new SSH port)."""
        if kill9 and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.stop()
        self._spawn()

    def hash_password(self, password):
        return subprocess.run(
            [str(self.bin), "hash-password"],
            input=password + "\n",
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()

    def admin_session(self):
        """ncclient as `admin` (password) through the built-in server."""
        from ncclient import manager

        return manager.connect(
            host="127.0.0.1",
            port=self.port,
            username="admin",
            password=self.password,
            hostkey_verify=False,
            timeout=30,
            allow_agent=False,
            look_for_keys=False,
        )

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


def start_sshd(agent, user, password):
    """Starts OpenSSH's sshd whose netconf subsystem relays to `agent`, with
    system user `user` (created if missing) and its password set; returns
    (port, sshd's PID)."""
    port = free_port()
    sshd_dir = agent.root / "sshd"
    out = subprocess.run(
        [
            str(REPO / "conformance/sshd/start-sshd.sh"),
            "--port", str(port),
            "--wgnetconf", str(agent.bin),
            "--socket", str(agent.socket),
            "--password", password,
            "--user", user,
            "--dir", str(sshd_dir),
        ],
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        raise RuntimeError(f"sshd did not start: {out.stderr}")
    return port, int(out.stdout.strip().splitlines()[-1])


def stop_pid(pid, sig=signal.SIGTERM):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _retry_on_lock(cmd, **kw):
    """useradd, chpasswd and userdel fail at once (status 1 or 10) when
    another run holds /etc/passwd's lock: retried, boundedly."""
    for attempt in range(50):
        out = subprocess.run(cmd, capture_output=True, text=True, **kw)
        if out.returncode == 0 or "lock" not in out.stderr.lower():
            return out
        time.sleep(0.1)
    return out


def add_system_user(name, password):
    """A throwaway system user with a login shell (sshd runs subsystems
    through it) and `password`; remove it with `remove_system_user`."""
    out = _retry_on_lock(
        ["useradd", "--system", "--create-home", "--home-dir", f"/home/{name}", "--shell", "/bin/sh", name]
    )
    if out.returncode != 0:
        raise RuntimeError(f"useradd {name}: {out.stderr}")
    out = _retry_on_lock(["chpasswd"], input=f"{name}:{password}\n")
    if out.returncode != 0:
        remove_system_user(name)
        raise RuntimeError(f"chpasswd {name}: {out.stderr}")


def user_pids(name):
    """PIDs of the processes running as user `name` (sshd's session and
    the relay of a connection that is still closing)."""
    try:
        uid = pwd.getpwnam(name).pw_uid
    except KeyError:
        return []
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if d.stat().st_uid == uid:
                    pids.append(int(d.name))
            except FileNotFoundError:
                pass
    return pids


def remove_system_user(name):
    """Removes a user made by `add_system_user` (or start-sshd.sh) with its
    home. Its processes end once sshd and the agent have stopped: waited
    for (bounded), then any left are killed by PID, as userdel refuses a
    user that still runs something."""
    deadline = time.monotonic() + 10
    while user_pids(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in user_pids(name):
        stop_pid(pid, signal.SIGKILL)
    out = _retry_on_lock(["userdel", "--remove", name])
    # 6: no such user (already gone).
    if out.returncode not in (0, 6, 12):
        raise RuntimeError(f"userdel {name}: {out.stderr}")


@pytest.fixture
def sshd(agent):
    """OpenSSH's sshd whose netconf subsystem relays to `agent`."""
    password = secrets.token_urlsafe(18)
    port, pid = start_sshd(agent, SSHD_USER, password)
    yield {"port": port, "user": SSHD_USER, "password": password}
    stop_pid(pid)


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
