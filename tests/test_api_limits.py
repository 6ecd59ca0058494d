"""The API's limits and its identity provider against a real `medkg serve --workers 2` (no models) with a small
request timeout, RS256 bearer JWTs from a real generated RSA key pair, and an embedded feed buffer (Valkey):

* a request past ``MEDKG_API_REQUEST_TIMEOUT_S`` (an upload whose body arrives too slowly) gets a 504 problem,
  it never hangs;
* RS256 tokens: a valid one is admitted with its role, a wrong key, an expired token, a wrong or missing
  audience, a wrong issuer, an unknown role and an HS256 token signed with the public key are 401;
* ``/readyz`` reports the feed buffer and names what is down;
* the rate limit per key holds across the two worker processes (the buckets live in Valkey), and the shared
  buckets themselves: two holders of one bucket admit a burst once, and an unreachable store falls back to a
  bucket per process instead of failing the request.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import jwt
import pytest
from api_helpers import start_api

pytestmark = pytest.mark.slow
BURST = 10
TIMEOUT_S = 2
AUDIENCE, ISSUER = "medkg-api", "https://idp.hospital.invalid/realms/staff"


def _rsa_pair():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    public = key.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    return private, public


@pytest.fixture(scope="module")
def keys():
    return {"idp": _rsa_pair(), "other": _rsa_pair()}


@pytest.fixture(scope="module")
def limited(graph_db, valkey, keys, tmp_path_factory):
    pem = tmp_path_factory.mktemp("limits-jwt") / "idp-public.pem"
    pem.write_text(keys["idp"][1])  # MEDKG_API_JWT_KEY may name a PEM file
    server = start_api(tmp_path_factory.mktemp("limits-api"), graph_db.server.data_dir, workers=2,
                       log_level="info", MEDKG_API_MODELS="none", MEDKG_API_REQUEST_TIMEOUT_S=str(TIMEOUT_S),
                       MEDKG_API_BURST=str(BURST), MEDKG_API_RATE_PER_S="0.01", MEDKG_FEEDS_DIR=str(valkey.data_dir),
                       MEDKG_API_JWT_KEY=str(pem), MEDKG_API_JWT_ALGORITHMS="RS256",
                       MEDKG_API_JWT_AUDIENCE=AUDIENCE, MEDKG_API_JWT_ISSUER=ISSUER)
    yield server
    server.stop()


def _raw_response(sock: socket.socket) -> tuple[int, dict, bytes]:
    """Status, headers and body of one HTTP/1.1 response read off ``sock`` (Content-Length framed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed after {data!r}")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def test_a_request_past_the_timeout_is_a_504_problem(limited):
    """An upload whose body trickles in: the server answers 504 after MEDKG_API_REQUEST_TIMEOUT_S instead of
    holding the request (and a worker's memory) open for as long as the client likes."""
    host, port = urlsplit(limited.url).hostname, urlsplit(limited.url).port
    boundary = "b0undary"
    first = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"bill.jpg\"\r\n"
             "Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff" * 1000
    head = (f"POST /v1/bills HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {limited.keys['clerk']}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 2000000\r\n\r\n").encode()
    with socket.create_connection((host, port), timeout=60) as sock:  # a bound on a hang, not a timing assertion
        sock.sendall(head + first)  # then nothing more: the rest of the 2 MB never comes
        status, headers, body = _raw_response(sock)
    assert status == 504
    assert headers["content-type"].startswith("application/problem+json")
    problem = json.loads(body)
    assert problem["code"] == "timeout" and "MEDKG_API_REQUEST_TIMEOUT_S" in problem["detail"]
    assert "Traceback" not in body.decode()
    with limited.client("clerk") as c:  # the server is fine afterwards
        assert c.get("/v1/claims").status_code == 200


def _token(private_pem: str, *, role: str = "clerk", exp_s: float = 300, aud: str | None = AUDIENCE,
           iss: str | None = ISSUER, algorithm: str = "RS256") -> str:
    claims = {"sub": f"sso-{role}", "medkg_role": role, "exp": int(time.time() + exp_s)}
    if aud is not None:
        claims["aud"] = aud
    if iss is not None:
        claims["iss"] = iss
    return jwt.encode(claims, private_pem, algorithm=algorithm)


def test_rs256_bearer_tokens_are_verified_against_the_configured_public_key(limited, keys):
    idp, other = keys["idp"][0], keys["other"][0]

    def status(token: str, path: str = "/v1/claims") -> int:
        return httpx.get(limited.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60).status_code

    assert status(_token(idp)) == 200
    assert status(_token(idp, role="clinician")) == 403  # admitted as who the token says: not a clerk
    assert status(_token(idp, role="admin"), "/v1/users") == 200
    refused = {
        "signed by another key": _token(other),
        "expired": _token(idp, exp_s=-120),
        "another audience": _token(idp, aud="someone-else"),
        "no audience": _token(idp, aud=None),
        "another issuer": _token(idp, iss="https://evil.invalid"),
        "an unknown role": _token(idp, role="superuser"),
    }
    for why, token in refused.items():
        r = httpx.get(limited.url + "/v1/claims", headers={"Authorization": f"Bearer {token}"}, timeout=60)
        assert r.status_code == 401, why
        assert r.json()["code"] == "unauthenticated" and "WWW-Authenticate" in r.headers, why


def test_an_hs256_token_keyed_with_the_public_pem_is_refused(limited, keys):
    """Algorithm confusion: HS256 with the public key as the secret (PyJWT will not sign one: made by hand)."""
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"sub": "mallory", "medkg_role": "admin", "exp": int(time.time() + 60),
                              "aud": AUDIENCE, "iss": ISSUER}).encode())
    signature = hmac.new(keys["idp"][1].encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{b64(signature)}"
    r = httpx.get(limited.url + "/v1/users", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    assert r.status_code == 401


def test_the_rate_limit_holds_across_workers(limited):
    """Each request on a new connection, one after the other (the two workers take turns accepting them: with a
    bucket per process the same traffic got 2 x BURST through, measured): a key gets its burst once."""
    log = limited.log.read_text()
    assert "token buckets shared by every worker" in log and "per-process token buckets" not in log
    assert log.count("Started server process") >= 2  # two workers really run

    async def hammer(n: int) -> list[int]:
        codes = []
        for _ in range(n):
            async with httpx.AsyncClient(base_url=limited.url, timeout=60,
                                         headers={"X-API-Key": limited.keys["researcher"]}) as c:
                codes.append((await c.get("/v1/concepts/Disease/x")).status_code)
        return codes

    codes = asyncio.run(hammer(4 * BURST))
    assert codes.count(429) == 3 * BURST, codes
    assert all(code in (200, 404, 429) for code in codes), codes


def test_readyz_reports_the_feed_buffer_and_names_what_is_down(limited, valkey):
    ready = httpx.get(limited.url + "/readyz", timeout=60)
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "graph": True, "models": {}, "feeds": True, "down": []}
    valkey.down()
    try:
        r = httpx.get(limited.url + "/readyz", timeout=60)
        assert r.status_code == 503
        assert r.json()["feeds"] is False and r.json()["down"] == ["feeds"] and r.json()["graph"] is True
        with limited.client("clerk") as c:  # the rest goes on (the rate limit on per-process buckets meanwhile)
            assert c.get("/v1/claims").status_code == 200
    finally:
        valkey.up()
    deadline = time.monotonic() + 60  # a bound on recovery, not a timing assertion
    while httpx.get(limited.url + "/readyz", timeout=60).status_code != 200 and time.monotonic() < deadline:
        time.sleep(0.5)
    assert httpx.get(limited.url + "/readyz", timeout=60).json()["down"] == []


def test_shared_buckets_admit_a_burst_once_across_holders(valkey):
    from api.ratelimit import SharedBuckets, TokenBuckets

    async def admitted(buckets: list, key: str, n: int) -> int:
        waits = [await buckets[i % len(buckets)].atake(key) for i in range(n)]
        for b in buckets:
            await b.aclose()
        assert all(w == 0 or w > 0.5 for w in waits)  # a refused request is told to wait about 1/rate
        return sum(w == 0 for w in waits)

    def shared():  # what each worker process holds
        return SharedBuckets(1.0, 5, valkey.current_url, "test valkey")

    key = f"holders-{time.time_ns()}"
    assert asyncio.run(admitted([shared(), shared()], key, 12)) == 5
    # per process, the same traffic gets the burst from each holder: what the shared buckets prevent
    assert asyncio.run(admitted([TokenBuckets(1.0, 5), TokenBuckets(1.0, 5)], key, 12)) == 10


def test_an_unreachable_store_falls_back_to_a_bucket_per_process():
    from api.ratelimit import SharedBuckets

    def gone() -> str:
        raise ConnectionError("the feed buffer is not running")

    async def run() -> list[float]:
        buckets = SharedBuckets(1.0, 3, gone, "nowhere")
        return [await buckets.atake("k") for _ in range(4)]

    waits = asyncio.run(run())
    assert waits[:3] == [0.0, 0.0, 0.0] and waits[3] > 0


def test_a_key_revoked_from_the_command_line_stops_at_once_in_every_worker(limited):
    """The workers keep verified keys' rows in memory; a revocation from another process (`medkg users revoke`)
    counts from the next request in each of them."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    key = limited.keys["integration"]

    def codes(n: int) -> list[int]:  # new connections: both workers answer
        return [httpx.get(limited.url + "/v1/claims", headers={"X-API-Key": key}, timeout=60).status_code
                for _ in range(n)]

    assert set(codes(6)) == {403}  # known (an integration key may not list claims), so cached
    env = {**os.environ, "MEDKG_DATA_DIR": str(limited.data_dir)}
    subprocess.run([str(Path(sys.executable).with_name("medkg")), "users", "revoke", "test-integration"], env=env,
                   check=True, capture_output=True)
    assert set(codes(6)) == {401}


def test_verified_keys_kept_in_memory_respect_revocation(tmp_path):
    from api.auth import Users
    from api.store import Database

    path = tmp_path / "users.sqlite3"
    server, other_process = Users(Database(path)), Users(Database(path))
    a, b = server.add("a", "clerk"), server.add("b", "clinician")
    assert server.verify(a).name == "a" and server.verify(b).name == "b"
    assert server.verify(a[:-1] + ("x" if a[-1] != "x" else "y")) is None  # a cached row still checks the secret
    other_process.revoke("a")  # another connection's commit
    assert server.verify(a) is None and server.verify(b).name == "b"
    server.revoke("b")  # this connection's own commit
    assert server.verify(b) is None
