"""The API's way to the graph: one shared driver, re-made when the server moves, and a 503 while it is away.

The embedded server comes back on new ports after a restart, so a stale driver cannot recover by itself:
on a connection error the driver is dropped and the next call asks :class:`pipelines.graphio.GraphTarget`
where the server is now. A request that finds the graph away is answered at once with 503 and
``Retry-After`` (it does not hang on the driver's own retries); the first request after the server is back
reconnects. Writes are the idempotent ``GraphWriter`` MERGEs, so re-sending one after an unknown outcome is
safe.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from neo4j.exceptions import Neo4jError

from api.problems import ApiProblem
from pipelines.graphio import GraphTarget, ServerDown, broken_connection

T = TypeVar("T")
RETRY_AFTER_S = 5


class GraphUnavailable(ApiProblem):
    def __init__(self, detail: str = "the graph server is not reachable; retry shortly"):
        super().__init__(503, "graph-unavailable", detail, headers={"Retry-After": str(RETRY_AFTER_S)})


class GraphAccess:
    def __init__(self, target: GraphTarget, on_error: Callable[[], None] = lambda: None):
        self.target, self.on_error = target, on_error
        self._lock = threading.Lock()
        self._driver = None
        self._async_driver = None  # made on first use, on the server's event loop
        self.database: str | None = target.database

    def _current(self):
        with self._lock:
            if self._driver is None:
                import neo4j

                try:
                    conn = self.target.connection()
                except ServerDown as exc:
                    raise GraphUnavailable() from exc
                # short timeouts: a request must not wait for a server that is gone
                self._driver = neo4j.GraphDatabase.driver(
                    conn.uri, auth=(conn.user, conn.password), connection_timeout=3,
                    connection_acquisition_timeout=10, max_connection_pool_size=64)
                self.database = conn.database
            return self._driver

    def _drop(self, driver) -> None:
        with self._lock:
            if self._driver is driver:
                self._driver = None
        with contextlib.suppress(Exception):
            driver.close()

    def call(self, fn: Callable[[object, str | None], T]) -> T:
        """``fn(driver, database)``; one reconnect on a broken connection, then 503."""
        try:
            for attempt in (0, 1):
                driver = self._current()
                try:
                    return fn(driver, self.database)
                except Exception as exc:
                    if not (broken_connection(exc) or _server_stopping(exc)):
                        raise
                    self._drop(driver)
                    if attempt:
                        raise GraphUnavailable() from exc
            raise AssertionError("unreachable")
        except GraphUnavailable:
            self.on_error()
            raise

    def _connection(self):
        try:
            return self.target.connection()
        except ServerDown as exc:
            raise GraphUnavailable() from exc

    async def acall(self, fn: Callable[[object, str | None], Awaitable[T]]) -> T:
        """``await fn(async_driver, database)``: :meth:`call` for the event loop (no thread per request)."""
        import neo4j

        try:
            for attempt in (0, 1):
                if self._async_driver is None:
                    conn = await asyncio.to_thread(self._connection)
                    self._async_driver = neo4j.AsyncGraphDatabase.driver(
                        conn.uri, auth=(conn.user, conn.password), connection_timeout=3,
                        connection_acquisition_timeout=10, max_connection_pool_size=64)
                    self.database = conn.database
                driver = self._async_driver
                try:
                    return await fn(driver, self.database)
                except Exception as exc:
                    if not (broken_connection(exc) or _server_stopping(exc)):
                        raise
                    if self._async_driver is driver:
                        self._async_driver = None
                    with contextlib.suppress(Exception):
                        await driver.close()
                    if attempt:
                        raise GraphUnavailable() from exc
            raise AssertionError("unreachable")
        except GraphUnavailable:
            self.on_error()
            raise

    async def aclose(self) -> None:
        driver, self._async_driver = self._async_driver, None
        if driver is not None:
            with contextlib.suppress(Exception):
                await driver.close()

    def write(self, fn: Callable[[object], T]) -> T:
        """``fn(GraphWriter)`` on the shared driver (the writer's own retries bounded to a few seconds)."""
        from graph.writer import GraphWriter

        return self.call(lambda driver, db: fn(GraphWriter(driver, db, max_wait_s=3.0)))

    def ping(self) -> bool:
        def one(driver, db) -> bool:  # auto-commit, not execute_query: see graph.writer.in_transaction
            with driver.session(database=db) as session:
                return session.run("RETURN 1 AS x").single()["x"] == 1

        try:
            return self.call(one)
        except Exception:  # noqa: BLE001 - readiness answers yes or no
            return False

    def close(self) -> None:
        with self._lock:
            driver, self._driver = self._driver, None
        if driver is not None:
            with contextlib.suppress(Exception):
                driver.close()


def _server_stopping(exc: BaseException) -> bool:
    return isinstance(exc, Neo4jError) and (exc.code or "").startswith("Neo.DatabaseError.")
