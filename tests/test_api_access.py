"""Who may call what: every /v1 and /fhir route x every role against a real `medkg serve` (401 without a key, 403 for a
wrong role), API keys and bearer JWTs, problem details for errors, and hostile input (Cypher injection, path
traversal) through every parameter and filename."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from api_helpers import API_PREFIXES, JWT_SECRET, ROLE_OF_TEMPLATE, ROLES, ROUTES, graph_counts

pytestmark = pytest.mark.slow


def _call(client, method: str, path: str):
    return client.request(method, path)


def test_the_route_table_covers_every_v1_route(api):
    schema = api.client().get("/openapi.json").json()
    assert schema["openapi"].startswith("3.1")
    served = {(m.upper(), p) for p, ops in schema["paths"].items() if p.startswith(API_PREFIXES) for m in ops}
    assert served == set(ROLE_OF_TEMPLATE)
    assert len(ROUTES) == len(ROLE_OF_TEMPLATE)


@pytest.mark.parametrize(("method", "path", "role"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_no_key_is_401_with_a_problem(api, method, path, role):
    with api.client() as c:
        r = _call(c, method, path)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "unauthenticated"
        r = c.request(method, path, headers={"X-API-Key": "mk_0000000000000000_forged"})
        assert r.status_code == 401


@pytest.mark.parametrize(("method", "path", "wrong"),
                         [(m, p, other) for m, p, role in ROUTES for other in ROLES if other != role],
                         ids=[f"{m} {p} as {other}" for m, p, role in ROUTES for other in ROLES if other != role])
def test_a_wrong_role_is_403(api, method, path, wrong):
    with api.client(wrong) as c:
        r = _call(c, method, path)
    assert r.status_code == 403, r.text
    assert r.json()["code"] == "forbidden-role"


@pytest.mark.parametrize(("method", "path", "role"), ROUTES, ids=[f"{m} {p}" for m, p, _ in ROUTES])
def test_the_right_role_gets_past_the_door(api, method, path, role):
    """Not 401/403 for the role the route is for (the request itself may be incomplete: 4xx of another kind)."""
    with api.client(role) as c:
        r = _call(c, method, path)
    assert r.status_code not in (401, 403), r.text
    assert r.status_code < 500, r.text


def _token(role: str, exp_s: float = 300, secret: str = JWT_SECRET) -> str:
    return jwt.encode({"sub": f"sso-{role}", "medkg_role": role, "exp": int(time.time() + exp_s)}, secret,
                      algorithm="HS256")


def test_bearer_jwts_are_verified(api):
    with api.client() as c:
        ok = c.get("/v1/claims", headers={"Authorization": f"Bearer {_token('clerk')}"})
        assert ok.status_code == 200
        assert c.get("/v1/claims", headers={"Authorization": f"Bearer {_token('clinician')}"}).status_code == 403
        assert c.get("/v1/claims", headers={"Authorization": f"Bearer {_token('clerk', -60)}"}).status_code == 401
        forged = _token("clerk", secret="another-secret-of-enough-length-0123456789")
        assert c.get("/v1/claims", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
        unsigned = jwt.encode({"sub": "x", "medkg_role": "admin", "exp": int(time.time() + 60)}, None, algorithm="none")
        assert c.get("/v1/users", headers={"Authorization": f"Bearer {unsigned}"}).status_code == 401


def test_keys_are_stored_only_as_salted_hashes_and_revocation_works(api):
    raw = (api.data_dir / "medkg-api.sqlite3").read_bytes()
    for key in api.keys.values():
        assert key.split("_", 2)[2].encode() not in raw
    with api.client("admin") as admin:
        made = admin.post("/v1/users", json={"name": "temp-clerk", "role": "clerk"})
        assert made.status_code == 201
        key = made.json()["api_key"]
        assert admin.post("/v1/users", json={"name": "temp-clerk", "role": "clerk"}).status_code == 409
        with api.client() as c:
            assert c.get("/v1/claims", headers={"X-API-Key": key}).status_code == 200
            assert admin.delete("/v1/users/temp-clerk").status_code == 204
            assert c.get("/v1/claims", headers={"X-API-Key": key}).status_code == 401
        listed = admin.get("/v1/users").json()
        assert all("api_key" not in u and "hash" not in u for u in listed)


def test_every_error_is_a_problem_without_a_trace(api):
    with api.client("clerk") as c:
        for r in (c.get("/no/such/route"), c.get("/v1/claims?limit=0"), c.get("/v1/claims?cursor=%%%"),
                  c.patch(f"/v1/claims/{'0' * 64}:0", content=b"{not json", headers={"content-type": "application/json"}),
                  c.delete("/v1/claims"), c.get("/v1/claims/not-a-claim-id")):
            assert 400 <= r.status_code < 500, r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            body = r.json()
            assert {"type", "title", "status", "code"} <= body.keys() and body["status"] == r.status_code
            assert "Traceback" not in r.text and "File \"" not in r.text


INJECTIONS = [
    "x' OR 1=1 //", "x\"}) MATCH (n) DETACH DELETE n //", "x}) DETACH DELETE n WITH 1 AS a MATCH (m",
    "`Patient` {pid: 'P1'}", "'; CALL db.labels() //", "../../../../etc/passwd", "..%2f..%2fetc%2fpasswd",
    "P1%00", "P1\u0000"[:2] + "%0a", "$pid", "{{7*7}}",
]


def test_cypher_injection_and_traversal_through_every_parameter(api, graph_db):
    before = graph_counts(graph_db)
    with api.client("clinician") as clin, api.client("researcher") as res, api.client("clerk") as clerk, \
            api.client("integration") as integ:
        for bad in INJECTIONS:
            for r in (clin.get(f"/v1/patients/{bad}/emr"), clin.get(f"/v1/patients/{bad}/timeline"),
                      clin.get("/v1/patients/P1/emr", params={"type": bad}),
                      clin.get("/v1/patients/P1/emr", params={"assertion": bad}),
                      res.get(f"/v1/concepts/Disease/{bad}"), res.get(f"/v1/concepts/{bad}/x"),
                      res.post("/v1/cohorts", json={"include": [{"type": "Disease", "name": bad}],
                                                    "exclude": [{"type": "Drug", "name": bad}]}),
                      res.post("/v1/cohorts", json={"include": [{"type": bad, "name": "x"}]}),
                      clerk.get("/v1/claims", params={"hospital": bad, "status": "pending"}),
                      clerk.get("/v1/claims", params={"doc_type": bad}),
                      clerk.get("/v1/claims", params={"cursor": bad}),
                      clerk.get(f"/v1/claims/{bad}"), clerk.get(f"/v1/jobs/{bad}"),
                      clerk.get(f"/v1/claims/{'0' * 64}:0/pages/{bad}"),
                      integ.post("/v1/records", json={"text": "诊断高血压。", "patient_id": bad}),
                      integ.post("/v1/records", json={"text": "诊断高血压。", "patient_id": "P-inj",
                                                      "encounter_id": bad})):
                assert r.status_code < 500, (bad, r.request.url, r.text)
                if r.status_code == 200:  # only a cohort or claim list answers, finding nothing
                    assert r.json().get("count") is None and not r.json().get("items"), r.text
    assert graph_counts(graph_db) == before


def test_a_filename_never_becomes_a_path(api):
    from api_helpers import ROOT

    data = (ROOT / "samples" / "bill.jpg").read_bytes()
    names = ["../../../../tmp/medkg-pwned.jpg", "/etc/passwd", "..\\..\\evil.jpg", "a/../../b.jpg", "\x00.jpg"]
    with api.client("clerk") as c:
        for name in names:
            r = c.post("/v1/bills", files={"files": (name, b"not an image at all", "image/jpeg")})
            assert r.status_code == 415 and name not in r.text
        r = c.post("/v1/bills", files={"files": (names[0], data, "image/jpeg")})
        assert r.status_code == 200, r.text
    assert not any((api.data_dir / "files").rglob("*.jpg"))
    assert not (api.data_dir.parent / "tmp").exists()
    stored = [p for p in (api.data_dir / "files").rglob("*") if p.is_file()]
    assert stored and all(len(p.name) == 64 for p in stored)
    assert "medkg-pwned" not in json.dumps(r.json())
