"""FHIR R4 intake for the API: ``feeds.fhir.accept`` (R4B validation, the durable append to the feed stream,
an OperationOutcome answer) on one stream connection made once, lazily.

The app builds this in its lifespan without touching the buffer: a server whose feed buffer is down (or was
never started) still starts and serves everything else; a FHIR submission then answers 503 with Retry-After
after ``store_wait_s`` of retrying, nothing stored. The buffer is ``REDIS_URL`` when set, else the embedded
Valkey under ``MEDKG_FEEDS_DIR`` (``medkg feeds up`` starts it; the API never starts it).

The buffer counts as *configured* (``/readyz`` then checks it, and the rate limit's buckets are kept in it) when
``REDIS_URL`` is set, ``MEDKG_FEEDS_DIR`` is set, or the embedded buffer at the default directory was running
when the server started."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from core.settings import Settings

RETRY_AFTER_S = 5


class FhirIntake:
    def __init__(self, settings: Settings, store_wait_s: float = 2.0):
        from feeds.buffer import BufferTarget

        url = os.environ.get("REDIS_URL") or None
        self.target = BufferTarget(url, None if url else str(Path(settings.feeds_dir).expanduser()),
                                   stream=settings.feeds_stream, dead_stream=settings.feeds_dead_stream,
                                   group=settings.feeds_group)
        self.configured = bool(url) or "feeds_dir" in settings.model_fields_set or self._embedded_running()
        self.store_wait_s = store_wait_s
        self._buffer = None
        self._lock = threading.Lock()

    @property
    def buffer(self):
        """The stream client, made on first use (it connects on its first call and reconnects by itself)."""
        with self._lock:
            if self._buffer is None:
                self._buffer = self.target.connect(timeout=5.0)
            return self._buffer

    def _embedded_running(self) -> bool:
        from feeds.buffer import EmbeddedValkey

        return EmbeddedValkey(self.target.data_dir).status()["running"]

    def ping(self, timeout_s: float = 2.0) -> bool:
        """Whether the buffer answers now (a client of its own with a short timeout: readiness must not wait)."""
        import redis

        try:
            client = redis.Redis.from_url(self.target.current_url(), socket_timeout=timeout_s,
                                          socket_connect_timeout=timeout_s)
            try:
                return bool(client.ping())
            finally:
                client.close()
        except (redis.RedisError, OSError):  # ConnectionError too: the embedded server is not running
            return False

    def accept(self, payload: bytes, resource_type: str | None, peer: str = "") -> tuple[int, dict]:
        """``(HTTP status, OperationOutcome)``: 201 once durably appended; 400/413/422 for the client's
        mistakes (kept in the dead-letter stream when it is reachable); 503 when the buffer is not."""
        from feeds.fhir import MAX_BYTES, MAX_ENTRIES, _outcome, accept

        try:
            return accept(payload, resource_type, self.buffer, max_bytes=MAX_BYTES, max_entries=MAX_ENTRIES,
                          store_wait_s=self.store_wait_s, peer=peer)
        except RecursionError:  # JSON nested deeper than the parser goes: the client's mistake
            return 400, _outcome("error", "structure", "payload is not JSON: nested too deeply")

    def close(self) -> None:
        with self._lock:
            buffer, self._buffer = self._buffer, None
        if buffer is not None:
            buffer.close()
