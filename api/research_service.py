"""What researchers may see: cohorts and concept neighbourhoods, with no identifier, name or free text.

- Patient ids are pseudonymised: ``HMAC-SHA256(key, pid)``, hex, 32 characters. Stable within a deployment
  (one key), unlinkable across deployments; the key is ``MEDKG_PSEUDONYM_KEY`` or, when that is unset, one
  generated at first start into ``<data_dir>/pseudonym.key`` (0600). Keep that file with the data: a new key
  gives every patient a new pseudonym.
- Every count below ``k`` (``MEDKG_COHORT_K``, default 5) is suppressed: a cohort smaller than k answers no
  pseudonyms and ``count: null``; an aggregate group below k is ``null``; a co-occurring concept is listed only
  if at least k of the cohort's patients have it; a concept's relations are listed only with evidence >= k.
- Only vocabulary leaves: concept types and names (graph keys), predicates, counts. Mention text, evidence
  sentences, document and encounter ids never do.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import Counter
from datetime import date
from pathlib import Path

from api.graph_access import GraphAccess
from api.problems import ApiProblem
from graph import queries


def pseudonym_key(configured: str, data_dir: Path) -> bytes:
    if configured:
        return configured.encode()
    path = Path(data_dir) / "pseudonym.key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def age_band(birth_year, today: date) -> str:
    if not isinstance(birth_year, int):
        return "unknown"
    lo = max(0, (today.year - birth_year) // 10 * 10)
    return f"{lo}-{lo + 9}"


class ResearchService:
    def __init__(self, graph: GraphAccess, key: bytes, k: int):
        self.graph, self.key, self.k = graph, key, k

    def pseudonym(self, pid: str) -> str:
        return hmac.new(self.key, pid.encode(), hashlib.sha256).hexdigest()[:32]

    def _counts(self, counter: Counter) -> list[dict]:
        return [{"value": str(v), "count": n if n >= self.k else None} for v, n in sorted(counter.items(), key=str)]

    def cohort(self, include: list[tuple[str, str]], exclude: list[tuple[str, str]], since: date | None,
               until: date | None) -> dict:
        if since and until and since > until:
            raise ApiProblem(422, "bad-window", "since is after until")

        def run(driver, db):
            pids = queries.cohort(driver, include, exclude, db)
            if pids and (since or until):
                pids = queries.cohort_in_window(driver, pids, include, since, until, db)
            aggregates = (queries.cohort_aggregates(driver, pids, top=10, min_patients=self.k, database=db)
                          if len(pids) >= self.k else None)
            return pids, aggregates

        try:
            pids, aggregates = self.graph.call(run)
        except ValueError as exc:  # an empty concept name after normalisation
            raise ApiProblem(422, "bad-concept", str(exc)) from None
        if aggregates is None:
            return {"k": self.k, "count": None, "suppressed": True, "patients": [], "sex": [], "age_band": [],
                    "co_occurring": []}
        today = date.today()
        sexes = Counter(p["sex"] if p["sex"] in ("F", "M", "X") else "unknown" for p in aggregates["people"])
        ages = Counter(age_band(p["birth_year"], today) for p in aggregates["people"])
        asked = {(t, queries.concept_key(n)) for t, n in include}
        co = [{"type": c["type"], "name": c["key"], "patients": c["patients"]} for c in aggregates["concepts"]
              if c["patients"] >= self.k and (c["type"], c["key"]) not in asked]
        return {"k": self.k, "count": len(pids), "suppressed": False,
                "patients": sorted(self.pseudonym(p) for p in pids),
                "sex": self._counts(sexes), "age_band": self._counts(ages), "co_occurring": co}

    def concept(self, label: str, name: str) -> dict:
        try:
            view = self.graph.call(lambda d, db: queries.concept_neighbourhood(d, label, name, db))
        except ValueError as exc:
            raise ApiProblem(422, "bad-concept", str(exc)) from None
        if not view["found"]:
            raise ApiProblem(404, "concept-not-found", "no such concept")
        shown = [{"direction": r["direction"], "predicate": r["predicate"], "label": r["label"], "type": r["type"],
                  "name": r["key"], "evidence": r["evidence"]} for r in view["relations"] if r["evidence"] >= self.k]
        return {"type": label, "name": view["key"], "found": True, "k": self.k,
                "documents": view["documents"] if view["documents"] >= self.k else None,
                "relations": shown, "suppressed_relations": len(view["relations"]) - len(shown)}
