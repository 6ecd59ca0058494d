"""The access log: one JSON line per request under /v1, apart from the application log, in
``<data_dir>/access.jsonl``: who (user, role, key id), which patient or claim (the route's path parameters),
the route template, method, status, when (UTC), and from where (client address)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

SUBJECT_PARAMS = ("pid", "claim_id", "job_id")


class AccessLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._lock = threading.Lock()
        self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115 - lives with the app

    def write(self, *, principal, route: str, method: str, status: int, client: str | None,
              path_params: dict, extra: dict | None = None) -> None:
        row = {"at": datetime.now(UTC).isoformat(), "user": principal.name if principal else None,
               "role": principal.role.value if principal else None,
               "key_id": principal.key_id if principal else None, "route": route, "method": method,
               "status": status, "client": client,
               **{k: str(v) for k, v in path_params.items() if k in SUBJECT_PARAMS}, **(extra or {})}
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with self._lock:
            self._file.write(line)

    def close(self) -> None:
        self._file.close()
