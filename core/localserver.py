"""A server process the product starts for itself on this machine: the embedded graph (:mod:`graph.server`) and
the embedded feed buffer (:mod:`feeds.buffer`) share this lifecycle.

Each lives in its own data directory with a generated password (0600), a state file naming its pid and ports
(0600), and a log; it runs detached (its own session), bound to 127.0.0.1 only. ``up`` and ``down`` are
idempotent and serialised by a file lock, so concurrent callers share one server; a state file whose pid is
gone, a zombie, or a reused pid of another program (``_owns``) counts as not running. A subclass says how to
start its server (``_start``) and how to recognise its process (``_owns``).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import socket
from pathlib import Path

import psutil


class PortTaken(Exception):
    """A free port was taken between picking and binding it: start again on another."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only, atomically (no reader sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def log_tail(path: Path, n: int = 4000) -> str:
    try:
        return path.read_bytes()[-n:].decode("utf-8", "replace")
    except OSError:
        return ""


def terminate(proc: psutil.Process, timeout: float) -> None:
    """SIGTERM (both servers flush and close cleanly on it), then SIGKILL after ``timeout``."""
    with contextlib.suppress(psutil.NoSuchProcess):
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except psutil.TimeoutExpired:
            proc.kill()
            proc.wait(10)


class LocalServer:
    error: type[Exception] = RuntimeError  # what a failed start raises
    name = "server"

    def __init__(self, data_dir: Path, start_timeout: float):
        self.data_dir, self.start_timeout = data_dir, start_timeout

    @property
    def state_file(self) -> Path:
        return self.data_dir / "server.json"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "password"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @contextlib.contextmanager
    def _lock(self):
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.data_dir / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _password(self) -> str:
        if self.password_file.exists():
            return self.password_file.read_text().strip()
        password = secrets.token_urlsafe(24)
        write_private(self.password_file, password)  # no newline: a server may read the file verbatim
        return password

    def _read_state(self) -> dict | None:
        try:
            return json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None

    def _write_state(self, state: dict) -> None:
        write_private(self.state_file, json.dumps(state, indent=2))

    def _owns(self, proc: psutil.Process, state: dict) -> bool:
        """Whether ``proc`` is this server (not a reused pid)."""
        raise NotImplementedError

    def _process(self, state: dict | None) -> psutil.Process | None:
        """The server process of ``state`` if it is still alive and really ours."""
        if not state:
            return None
        try:
            proc = psutil.Process(state["pid"])
            if proc.status() == psutil.STATUS_ZOMBIE or not self._owns(proc, state):
                return None
            return proc
        except (psutil.Error, KeyError, TypeError):
            return None

    def status(self) -> dict:
        """``{"running": bool, ...state, "rss_bytes": ...}``; never starts anything."""
        state = self._read_state()
        proc = self._process(state)
        if proc is None:
            return {"running": False, "data_dir": str(self.data_dir)}
        try:
            rss = proc.memory_info().rss
        except psutil.Error:
            rss = None
        return {"running": True, **state, "rss_bytes": rss}

    def _start(self, password: str, attempt: int) -> dict:
        """Start the server process, wait until it answers, return its state (``running`` True)."""
        raise NotImplementedError

    def up(self) -> dict:
        """Start the server unless it runs already; returns its state once it answers."""
        with self._lock():
            st = self.status()
            if st["running"]:
                return st
            self.state_file.unlink(missing_ok=True)
            password = self._password()
            last: Exception | None = None
            for attempt in range(3):
                try:
                    return self._start(password, attempt)
                except PortTaken as exc:
                    last = exc
            raise self.error(f"{self.name} failed to start: {last}")

    def down(self, timeout: float = 60.0) -> bool:
        """Stop the server; True if one was running."""
        with self._lock():
            proc = self._process(self._read_state())
            if proc is not None:
                terminate(proc, timeout)
            self.state_file.unlink(missing_ok=True)
            return proc is not None
