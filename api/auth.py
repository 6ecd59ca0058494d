"""Who is calling: API keys (the default) or OAuth2 bearer JWTs (deployments with an identity provider).

API keys look like ``mk_<key id>_<secret>``. Only a salted hash is stored: ``HMAC-SHA256(salt, secret)`` with a
random 16-byte salt per key. A fast hash is enough here because the secret is 32 random bytes (no dictionary
to try), and it keeps verification cheap on every request; the key id finds the row, the hash is compared in
constant time. ``medkg users add NAME --role ROLE`` prints a key once; it cannot be shown again.

JWTs (``MEDKG_API_JWT_KEY``: a PEM public key for RS256/ES256, or a shared secret for HS256) are verified
with PyJWT: signature, expiry, and audience/issuer when configured; the role is read from the claim named by
``MEDKG_API_JWT_ROLE_CLAIM`` (default ``medkg_role``), the user from ``sub``. Use keys for systems (a bureau's
intake, a HIS feed) and for small sites; use JWTs where people sign in through the hospital's identity
provider, so accounts and revocation stay there.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum

from api.store import Database


class Role(str, Enum):
    clerk = "clerk"  # bills, claims, corrections
    clinician = "clinician"  # EMR views with identifiers
    researcher = "researcher"  # cohorts and concept views: pseudonymised, no names, no free text
    integration = "integration"  # records (and feeds) in
    admin = "admin"  # users


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    key_id: str  # the API key's id, or "jwt:<sub>"


class UserError(ValueError):
    pass


def _hash(salt: bytes, secret: str) -> bytes:
    return hmac.new(salt, secret.encode(), hashlib.sha256).digest()


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Users:
    """Keys in the API's database. :meth:`verify` keeps the rows of keys it has verified (key id, salt, hash; never
    a key) in memory, and drops them all whenever SQLite's ``PRAGMA data_version`` says another connection (another
    thread, another worker, ``medkg users revoke``) committed anything since this thread last looked: a revocation
    counts from the next request, without a query per request (measured: the lookup was a SELECT per request)."""

    def __init__(self, db: Database):
        self.db = db
        self._rows: dict[str, tuple[bytes, bytes, Principal]] = {}  # key id -> salt, hash, who
        self._seen = threading.local()  # the data_version this thread's connection last reported
        self._generation = 0  # bumped by every drop

    def add(self, name: str, role: str) -> str:
        """A new key for ``name`` (a new user) with ``role``; returns the key, which is not stored."""
        name = name.strip()
        if not name or len(name) > 100 or not name.isprintable():
            raise UserError("a user name is 1-100 printable characters")
        role = Role(role).value
        key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        with self.db.tx() as c:
            if c.execute("SELECT 1 FROM users WHERE name = ? AND revoked_at IS NULL", (name,)).fetchone():
                raise UserError(f"user {name!r} already has an active key; revoke it first")
            c.execute("INSERT INTO users (key_id, name, role, salt, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                      (key_id, name, role, salt, _hash(salt, secret), _now()))
        return f"mk_{key_id}_{secret}"

    def list(self) -> list[dict]:
        return [{"name": r["name"], "role": r["role"], "key_id": r["key_id"], "created_at": r["created_at"],
                 "revoked_at": r["revoked_at"]}
                for r in self.db.query("SELECT * FROM users ORDER BY created_at, key_id")]

    def revoke(self, name: str) -> int:
        with self.db.tx() as c:
            n = c.execute("UPDATE users SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
                          (_now(), name)).rowcount
        self._drop()  # this connection's own commit does not move its data_version
        return n

    def verify(self, key: str) -> Principal | None:
        parts = key.split("_", 2)
        if len(parts) != 3 or parts[0] != "mk" or len(parts[1]) != 16:
            return None
        conn = self.db.conn()
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if getattr(self._seen, "version", None) != version:
            self._drop()
            self._seen.version = version
        generation = self._generation
        cached = self._rows.get(parts[1])
        if cached is None:
            row = conn.execute("SELECT * FROM users WHERE key_id = ? AND revoked_at IS NULL", (parts[1],)).fetchone()
            if row is None:
                return None  # misses are not kept: unknown ids must not fill the memory
            cached = (row["salt"], row["hash"], Principal(row["name"], Role(row["role"]), row["key_id"]))
        salt, digest, principal = cached
        if not hmac.compare_digest(digest, _hash(salt, parts[2])):
            return None
        if generation == self._generation:  # not dropped meanwhile (a row read before a revocation stays out)
            self._rows[parts[1]] = cached
        return principal

    def _drop(self) -> None:
        self._generation += 1
        self._rows = {}


class JwtVerifier:
    def __init__(self, key: str, algorithms: list[str], audience: str = "", issuer: str = "",
                 role_claim: str = "medkg_role"):
        self.key, self.algorithms = key, algorithms
        self.audience, self.issuer, self.role_claim = audience or None, issuer or None, role_claim

    def verify(self, token: str) -> Principal | None:
        import jwt

        try:
            claims = jwt.decode(token, self.key, algorithms=self.algorithms, audience=self.audience,
                                issuer=self.issuer, options={"require": ["exp", "sub"]})
            return Principal(str(claims["sub"]), Role(claims[self.role_claim]), f"jwt:{claims['sub']}")
        except (jwt.PyJWTError, KeyError, ValueError):
            return None
