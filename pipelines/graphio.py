"""Where a pipeline writes, and a writer that outlives graph-server restarts.

``GraphWriter`` retries transient errors for a few seconds; a restarted server can take longer than that, and
the embedded server comes back on *new* ports, so a worker's driver is stale afterwards. ``ResilientWriter``
hands the writer a ``reconnect`` that asks again where the server is (without starting one: a worker never owns
the server's lifecycle), and around that drops everything on a connection error and retries until
``timeout_s``. Writes are idempotent MERGEs, so
re-sending a batch that may already have been committed writes nothing twice.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from neo4j.exceptions import Neo4jError, ServiceUnavailable, SessionExpired, TransientError

from graph.server import Connection, EmbeddedServer

T = TypeVar("T")

# Worth waiting for: the server is away, restarting, or busy.
RECONNECT = (ServiceUnavailable, SessionExpired, TransientError, ConnectionError)


def broken_connection(exc: BaseException) -> bool:
    """What a connection that worked until now gets from ArcadeDB's Bolt server while it shuts down (seen when
    it is stopped in the middle of an ingest): the session's credentials "no longer valid", then requests "not
    expected in state: AUTHENTICATION". The data is not at fault; a fresh connection to the restarted server is
    the cure, and re-sending an idempotent batch is safe."""
    if isinstance(exc, RECONNECT):
        return True
    if not isinstance(exc, Neo4jError):
        return False
    message = exc.message or ""
    return (exc.code == "Neo.ClientError.Security.Unauthorized" and "no longer valid" in message) or (
        exc.code == "Neo.ClientError.Request.Invalid" and "not expected in state" in message)


DATABASE_ERROR_RETRIES = 3


def _database_error(exc: BaseException) -> bool:
    return isinstance(exc, Neo4jError) and (exc.code or "").startswith("Neo.DatabaseError.")


class ServerDown(ConnectionError):
    """The embedded server is not running (yet)."""


@dataclass(frozen=True)
class GraphTarget:
    """Where to write; pickled into the pipeline, so it holds no password. Workers read the password from
    ``NEO4J_PASSWORD`` (a Neo4j server at ``uri``) or from the embedded server's password file."""

    uri: str | None = None  # None: the embedded server at data_dir
    user: str = "neo4j"
    database: str | None = None
    data_dir: str | None = None

    @classmethod
    def from_env(cls, data_dir: str | os.PathLike | None = None) -> GraphTarget:
        """``NEO4J_*`` when ``NEO4J_URI`` is set, else the embedded server (started here, on the driver)."""
        uri = os.environ.get("NEO4J_URI")
        if uri:
            return cls(uri, os.environ.get("NEO4J_USER", "neo4j"), os.environ.get("NEO4J_DATABASE") or None)
        server = EmbeddedServer(data_dir)
        state = server.up()
        return cls(None, state["user"], state["database"], str(server.data_dir))

    def connection(self) -> Connection:
        """The current connection; raises :class:`ServerDown` while the embedded server is not running."""
        if self.uri:
            return Connection(self.uri, self.user, os.environ.get("NEO4J_PASSWORD", ""), self.database)
        server = EmbeddedServer(self.data_dir)
        state = server.status()
        if not state["running"] or not state.get("bolt_port"):
            raise ServerDown(f"embedded graph server at {server.data_dir} is not running")
        return Connection(f"bolt://127.0.0.1:{state['bolt_port']}", state.get("user", self.user),
                          server.password_file.read_text().strip(), state.get("database", self.database))

    def describe(self) -> str:
        return self.uri or f"embedded ArcadeDB ({self.data_dir})"


class ResilientWriter:
    """A :class:`graph.writer.GraphWriter` that reconnects; ``call(fn)`` runs ``fn(writer)`` until it
    succeeds, fails with an error that is not about the connection, or ``timeout_s`` has passed."""

    def __init__(self, target: GraphTarget, batch_size: int = 1000, timeout_s: float = 300.0):
        self.target, self.batch_size, self.timeout_s = target, batch_size, timeout_s
        self._driver = self._writer = None
        self.reconnects = 0  # connections dropped and made again here
        self._past_retries = 0  # transactions retried by the writers closed so far

    @property
    def retries(self) -> int:
        """Transactions the writers retried (a server restart shows up here first)."""
        return self._past_retries + (self._writer.retries if self._writer is not None else 0)

    def call(self, fn: Callable[[object], T]) -> T:
        deadline = time.monotonic() + self.timeout_s
        attempt = db_errors = 0
        while True:
            try:
                return fn(self._writer or self._connect())
            except Exception as exc:
                # ArcadeDB stopping mid-request may also answer "Neo.DatabaseError.General.UnknownError": retried
                # a few times (idempotent MERGEs), so a server going away is waited for, a real fault still raises
                db_errors += _database_error(exc)
                if not (broken_connection(exc) or (_database_error(exc) and db_errors <= DATABASE_ERROR_RETRIES)):
                    raise
                self.close()
                attempt += 1
                if time.monotonic() >= deadline:
                    raise
                self.reconnects += 1
                pause = random.uniform(0.5, 1.0) * min(5.0, 0.2 * 2 ** min(attempt, 5))
                time.sleep(max(0.0, min(pause, deadline - time.monotonic())))

    def _connect(self):
        from graph.writer import GraphWriter

        conn = self.target.connection()
        self._driver = _driver(conn)
        self._writer = GraphWriter(self._driver, conn.database, batch_size=self.batch_size,
                                   max_wait_s=min(60.0, self.timeout_s), reconnect=self._reconnect)
        return self._writer

    def _reconnect(self):
        """For the writer's own retry loop: a driver to where the server is now, or None while it is down."""
        try:
            return _driver(self.target.connection())
        except ServerDown:
            return None

    def close(self) -> None:
        driver, writer, self._driver, self._writer = self._driver, self._writer, None, None
        self._past_retries += writer.retries if writer is not None else 0
        for closeable in (writer, driver):  # the writer closes the drivers its reconnects made
            if closeable is not None:
                with contextlib.suppress(Exception):  # closing a driver to a dead server may fail: gone anyway
                    closeable.close()


def _driver(conn: Connection):
    import neo4j

    return neo4j.GraphDatabase.driver(conn.uri, auth=(conn.user, conn.password))


def graph_counts(target: GraphTarget) -> dict[str, int]:
    """Node and relationship totals (the summary reports before/after)."""
    rows = read_queries(target, ["MATCH (n) RETURN count(n) AS n", "MATCH ()-[r]->() RETURN count(r) AS n"])
    return {"nodes": rows[0][0]["n"], "relationships": rows[1][0]["n"]}


def read_queries(target: GraphTarget, queries: Sequence[str]) -> list[list[dict]]:
    def run(writer):
        with writer.driver.session(database=writer.database) as session:
            return [session.run(q).data() for q in queries]

    w = ResilientWriter(target, timeout_s=60)
    try:
        return w.call(run)
    finally:
        w.close()
