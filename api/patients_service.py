"""A patient's post-structured record (the EMR view), timeline and own facts, read from the graph
(:func:`graph.queries.emr_view`, :func:`graph.queries.timeline`, :func:`graph.facts.patient_facts`), filtered
here."""

from __future__ import annotations

from datetime import date

from api.graph_access import GraphAccess
from api.problems import ApiProblem
from graph import queries
from graph.facts import patient_facts

_EMR_KEYS = ("name", "key", "assertion", "text", "evidence", "start", "end", "confidence", "doc_id",
             "encounter_id", "date")


class PatientService:
    def __init__(self, graph: GraphAccess):
        self.graph = graph

    def emr(self, pid: str, types: list[str] | None = None, assertions: list[str] | None = None,
            since: date | None = None, until: date | None = None) -> dict:
        return _filtered(self.graph.call(lambda d, db: queries.emr_view(d, pid, db)), types, assertions, since, until)

    async def emr_async(self, pid: str, types: list[str] | None = None, assertions: list[str] | None = None,
                        since: date | None = None, until: date | None = None) -> dict:
        """:meth:`emr` on the event loop (the async driver): the API's hot path."""
        view = await self.graph.acall(lambda d, db: queries.emr_view_async(d, pid, db))
        return _filtered(view, types, assertions, since, until)

    def timeline(self, pid: str) -> dict:
        view = self.graph.call(lambda d, db: queries.timeline(d, pid, db))
        if not view["found"]:
            raise ApiProblem(404, "patient-not-found", "no such patient")
        return {"pid": pid, "events": view["events"]}

    def facts(self, pid: str, types: list[str] | None = None, include_non_affirmed: bool = False,
              since: date | None = None, until: date | None = None) -> dict:
        """The relation statements of the patient's own documents (affirmed ones only unless
        ``include_non_affirmed``), filtered by predicate and date window; each with the concept-level
        ``knowledge_evidence`` beside it (over all documents, not this patient's). 404 for an unknown patient."""
        facts = self.graph.call(lambda d, db: patient_facts(d, pid, db, include_non_affirmed=include_non_affirmed))
        if not facts and not self.graph.call(lambda d, db: queries.patient_exists(d, pid, db)):
            raise ApiProblem(404, "patient-not-found", "no such patient")
        lo, hi = since.isoformat() if since else None, until.isoformat() if until else None
        kept = [f for f in facts
                if (not types or f["type"] in types)
                and (lo is None or (f["date"] is not None and f["date"][:10] >= lo))
                and (hi is None or (f["date"] is not None and f["date"][:10] <= hi))]
        return {"pid": pid, "include_non_affirmed": include_non_affirmed, "facts": kept}


def _filtered(view: dict, types, assertions, since, until) -> dict:
    """The EMR view with the request's filters applied (type, assertion, date window)."""
    pid = view["pid"]
    if not view["found"]:
        raise ApiProblem(404, "patient-not-found", "no such patient")
    lo, hi = since.isoformat() if since else None, until.isoformat() if until else None
    out = {}
    for label, entries in view["concepts"].items():
        if types and label not in types:
            continue
        out[label] = [{k: e.get(k) for k in _EMR_KEYS} for e in entries
                      if (not assertions or e["assertion"] in assertions)
                      and (lo is None or (e["date"] is not None and e["date"][:10] >= lo))
                      and (hi is None or (e["date"] is not None and e["date"][:10] <= hi))]
    return {"pid": pid, "concepts": out}
