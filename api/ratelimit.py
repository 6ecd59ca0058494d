"""Request rate per API key: a token bucket per key (``MEDKG_API_RATE_PER_S`` refill, ``MEDKG_API_BURST``
size). In memory, per process: a restart forgives everyone, which is fine for a limit meant to protect the
service, not to bill anybody."""

from __future__ import annotations

import math
import threading
import time


class TokenBuckets:
    def __init__(self, rate_per_s: float, burst: int):
        self.rate, self.burst = rate_per_s, burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0 if a request may go now, else the seconds until it may."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1 - tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        return str(max(1, math.ceil(wait_s)))
