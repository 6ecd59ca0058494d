"""Uploaded files, content-addressed: ``<data_dir>/files/<sha[:2]>/<sha256>``. The client's filename is never
part of a path (it is not even kept): the name is the hash of the bytes, so a file stored twice is stored once
and nothing a client sends can point a path anywhere."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from core.records import sha256_bytes

_SHA = re.compile(r"^[0-9a-f]{64}$")


class FileStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)

    def path(self, sha: str) -> Path:
        if not _SHA.match(sha):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha[:2] / sha

    def put(self, data: bytes) -> tuple[str, Path]:
        sha = sha256_bytes(data)
        path = self.path(sha)
        if not path.exists():
            path.parent.mkdir(exist_ok=True, mode=0o700)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return sha, path

    def get(self, sha: str) -> Path | None:
        try:
            path = self.path(sha)
        except ValueError:
            return None
        return path if path.exists() else None
