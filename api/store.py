"""The API's own state, in one SQLite database (WAL) under the data directory: what must survive restarts
and change in transactions. The graph holds the knowledge; this holds the service's bookkeeping.

    users        API keys (salted hashes only), names, roles, revocation
    jobs         background bill jobs: state, progress, counts, dead letters, claim ids
    claims       the claim documents (the full ``Claim`` JSON: boxes, raw readings, confidences), their
                 version (the ETag), review status and the columns the list filters on
    corrections  the audit trail: who, when, field, old -> new, reason (approvals and rejections too)

Each thread gets its own connection (sqlite3 connections are not shared across threads); every write is one
``with db.tx() as c:`` transaction (``BEGIN IMMEDIATE``: writers queue instead of failing on upgrade).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    key_id TEXT PRIMARY KEY, name TEXT NOT NULL, role TEXT NOT NULL, salt BLOB NOT NULL, hash BLOB NOT NULL,
    created_at TEXT NOT NULL, revoked_at TEXT);
CREATE INDEX IF NOT EXISTS users_name ON users(name);
CREATE TABLE IF NOT EXISTS jobs (
    job_id TEXT PRIMARY KEY, owner TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,
    started_at TEXT, finished_at TEXT, files INTEGER NOT NULL, done INTEGER NOT NULL DEFAULT 0,
    counts TEXT, dead_letters TEXT, claim_ids TEXT, error TEXT, out_dir TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS claims (
    claim_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, page INTEGER NOT NULL, doc_type TEXT NOT NULL,
    hospital TEXT, issue_date TEXT, needs_review INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'pending',
    version INTEGER NOT NULL DEFAULT 1, document TEXT NOT NULL, source TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS claims_list ON claims(created_at, claim_id);
CREATE TABLE IF NOT EXISTS corrections (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, claim_id TEXT NOT NULL, version INTEGER NOT NULL, at TEXT NOT NULL,
    user TEXT NOT NULL, role TEXT NOT NULL, field TEXT NOT NULL, old TEXT, new TEXT, reason TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS corrections_claim ON corrections(claim_id, seq);
CREATE TABLE IF NOT EXISTS files (
    doc_id TEXT PRIMARY KEY, media_type TEXT NOT NULL, size_bytes INTEGER NOT NULL, stored_at TEXT NOT NULL);
"""


class Database:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._local = threading.local()
        self.conn().executescript(SCHEMA)  # idempotent; executescript manages its own transaction

    def conn(self) -> sqlite3.Connection:
        c = getattr(self._local, "conn", None)
        if c is None:
            c = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=True)
            c.row_factory = sqlite3.Row
            c.execute("PRAGMA journal_mode=WAL")
            c.execute("PRAGMA synchronous=NORMAL")
            c.execute("PRAGMA foreign_keys=ON")
            self._local.conn = c
        return c

    @contextlib.contextmanager
    def tx(self):
        c = self.conn()
        c.execute("BEGIN IMMEDIATE")
        try:
            yield c
        except BaseException:
            c.execute("ROLLBACK")
            raise
        c.execute("COMMIT")

    def query(self, sql: str, params=()) -> list[sqlite3.Row]:
        return self.conn().execute(sql, params).fetchall()

    def one(self, sql: str, params=()) -> sqlite3.Row | None:
        return self.conn().execute(sql, params).fetchone()
