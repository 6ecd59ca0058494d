"""Claims: structure uploaded bills, keep the claim documents, correct them under ETags, review them.

The claim store (SQLite ``claims`` table) is the one place claims are read from: the synchronous upload path and
the bill jobs (the Beam pipeline) both put the full ``Claim`` there, and every write of a claim also goes to the
graph (``GraphWriter.write_claims``, idempotent). A claim's ``version`` is its ETag; a correction must name the
version it was made on (``If-Match``), runs in one ``BEGIN IMMEDIATE`` transaction (so two clerks are
serialised), re-runs the checks, rewrites the claim in the graph and appends to the audit trail; if the graph
write fails, nothing is committed.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from api.auth import Principal
from api.files import FileStore
from api.graph_access import GraphAccess
from api.problems import ApiProblem
from api.store import Database
from core.records import BillField, Claim, DocumentType, FieldKind
from graph.rows import claim_id_of


def now() -> str:
    return datetime.now(UTC).isoformat()


def etag_of(version: int) -> str:
    return f'"v{version}"'


def _field_out(f: BillField | None) -> dict | None:
    if f is None:
        return None
    return {"value": None if f.value is None else str(f.value), "kind": f.kind.value, "raw": f.raw,
            "confidence": f.confidence, "box": [list(p) for p in f.box] if f.box else None,
            "needs_review": f.needs_review, "note": f.note}


_ITEM_FIELDS = ("name", "amount", "spec", "unit", "quantity", "unit_price", "item_class", "tax_rate", "tax")


def _hospital(claim: Claim) -> str | None:
    f = claim.header.get("hospital")
    return None if f is None or f.value is None else str(f.value)


def _issue_date(claim: Claim) -> str | None:
    f = claim.header.get("issue_date")
    return f.value.isoformat() if f is not None and isinstance(f.value, date) else None


def _needs_review(claim: Claim) -> bool:
    fields = [*claim.header.values(), *claim.payments.values(), claim.total_figures, claim.total_words,
              *(getattr(it, n) for it in claim.items for n in _ITEM_FIELDS)]
    return any(f is not None and f.needs_review for f in fields)


def summary(row) -> dict:
    return {"claim_id": row["claim_id"], "doc_id": row["doc_id"], "page": row["page"], "doc_type": row["doc_type"],
            "hospital": row["hospital"], "issue_date": row["issue_date"], "needs_review": bool(row["needs_review"]),
            "status": row["status"], "version": row["version"], "source": row["source"],
            "created_at": row["created_at"]}


def claim_out(row) -> dict:
    claim = Claim.model_validate_json(row["document"])
    return {**summary(row), "etag": etag_of(row["version"]),
            "header": {k: _field_out(v) for k, v in claim.header.items()},
            "items": [{"line_no": it.line_no,
                       "fields": {n: _field_out(getattr(it, n)) for n in _ITEM_FIELDS if getattr(it, n) is not None},
                       "match": None if it.match is None else it.match.model_dump(
                           include={"code", "name", "category", "score", "method"})} for it in claim.items],
            "total_figures": _field_out(claim.total_figures), "total_words": _field_out(claim.total_words),
            "payments": {k: _field_out(v) for k, v in claim.payments.items()},
            "findings": [f.model_dump(mode="json", include={"rule", "severity", "detail", "message", "evidence"})
                         for f in claim.findings]}


def _encode_cursor(created_at: str, claim_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([created_at, claim_id]).encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created_at, claim_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if isinstance(created_at, str) and isinstance(claim_id, str):
            return created_at, claim_id
        raise ValueError("not two strings")
    except (ValueError, TypeError, UnicodeError):
        raise ApiProblem(422, "bad-cursor", "the cursor is not one this API gave out") from None


class ClaimService:
    def __init__(self, db: Database, files: FileStore, graph: GraphAccess):
        self.db, self.files, self.graph = db, files, graph
        self.catalogue = None  # MEDKG_CATALOGUE (api.app sets it): a clerk's pick of a match is re-checked against it
        self.register = None  # MEDKG_HOSPITAL_REGISTER (api.app sets it): a corrected hospital is looked up in it

    # --- storing ---------------------------------------------------------------------------------------------
    def store_new(self, claims: list[Claim], source: str, graph_written: bool = False) -> list[str]:
        """Claims just structured (upload) or ingested (job). A claim id already stored keeps its stored
        document, status and trail (a bill uploaded twice must not undo a clerk's corrections): the graph is
        given the stored version back. New claims are written to the graph unless the caller did."""
        ids = [claim_id_of(c) for c in claims]
        known = {r["claim_id"]: r for r in self.db.query(
            f"SELECT claim_id, document, version FROM claims WHERE claim_id IN ({','.join('?' * len(ids))})", ids)}
        fresh = [c for c, i in zip(claims, ids) if i not in known]
        to_graph = [] if graph_written else list(fresh)
        # a re-ingest may have overwritten a corrected claim in the graph: give the graph the stored one back
        to_graph += [Claim.model_validate_json(r["document"]) for r in known.values()
                     if not graph_written or r["version"] > 1]
        if to_graph:
            self.graph.write(lambda w: w.write_claims([(c, None) for c in to_graph]))
        t = now()
        with self.db.tx() as c:
            for claim in fresh:
                c.execute("INSERT OR IGNORE INTO claims (claim_id, doc_id, page, doc_type, hospital, issue_date, "
                          "needs_review, status, version, document, source, created_at, updated_at) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', 1, ?, ?, ?, ?)",
                          (claim_id_of(claim), claim.doc_id, claim.page, claim.doc_type.value, _hospital(claim),
                           _issue_date(claim), int(_needs_review(claim)), claim.model_dump_json(), source, t, t))
        return ids

    # --- reading ---------------------------------------------------------------------------------------------
    def row(self, claim_id: str):
        row = self.db.one("SELECT * FROM claims WHERE claim_id = ?", (claim_id,))
        if row is None:
            raise ApiProblem(404, "claim-not-found", "no such claim")
        return row

    def get(self, claim_id: str) -> dict:
        return claim_out(self.row(claim_id))

    def get_many(self, claim_ids: list[str]) -> list[dict]:
        return [self.get(i) for i in claim_ids]

    def list(self, *, status: str | None = None, needs_review: bool | None = None, hospital: str | None = None,
             doc_type: str | None = None, since: date | None = None, until: date | None = None,
             cursor: str | None = None, limit: int = 50) -> dict:
        where, params = [], []
        for column, value in (("status", status), ("hospital", hospital), ("doc_type", doc_type)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if needs_review is not None:
            where.append("needs_review = ?")
            params.append(int(needs_review))
        if since is not None:
            where.append("issue_date >= ?")
            params.append(since.isoformat())
        if until is not None:
            where.append("issue_date <= ?")
            params.append(until.isoformat())
        if cursor:
            created_at, claim_id = _decode_cursor(cursor)
            where.append("(created_at, claim_id) > (?, ?)")
            params += [created_at, claim_id]
        sql = ("SELECT * FROM claims" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY created_at, claim_id LIMIT ?")
        rows = self.db.query(sql, [*params, limit + 1])
        more = len(rows) > limit
        rows = rows[:limit]
        return {"items": [summary(r) for r in rows],
                "next_cursor": _encode_cursor(rows[-1]["created_at"], rows[-1]["claim_id"]) if more else None}

    def history(self, claim_id: str) -> list[dict]:
        self.row(claim_id)
        return [dict(r) for r in self.db.query(
            "SELECT seq, version, at, user, role, field, old, new, reason FROM corrections WHERE claim_id = ? "
            "ORDER BY seq", (claim_id,))]

    # --- changing --------------------------------------------------------------------------------------------
    def _check_etag(self, row, if_match: str | None) -> None:
        if if_match is None:
            raise ApiProblem(428, "if-match-required", "send If-Match with the claim's ETag")
        tags = [t.strip() for t in if_match.split(",")]
        if "*" not in tags and etag_of(row["version"]) not in tags:
            raise ApiProblem(412, "etag-mismatch", f"the claim changed since; its ETag is now {etag_of(row['version'])}",
                             headers={"ETag": etag_of(row["version"])})

    def correct(self, claim_id: str, if_match: str | None, changes: list[tuple[str, str | None]], reason: str,
                who: Principal) -> dict:
        from claims.checks import get_field, set_field

        with self.db.tx() as c:
            row = c.execute("SELECT * FROM claims WHERE claim_id = ?", (claim_id,)).fetchone()
            if row is None:
                raise ApiProblem(404, "claim-not-found", "no such claim")
            self._check_etag(row, if_match)
            if row["status"] != "pending":
                raise ApiProblem(409, "claim-decided", f"the claim is {row['status']}; corrections are closed")
            claim = Claim.model_validate_json(row["document"])
            trail = []
            for path, value in changes:
                if path.endswith(".match_code"):  # a runner-up picked as the line's catalogue match
                    claim, old_code = choose_match(claim, path, value, self.catalogue)
                    trail.append((path, old_code, value))
                    continue
                try:
                    old = get_field(claim, path)
                except (KeyError, IndexError):
                    old = None
                    if path.startswith("items["):
                        raise ApiProblem(422, "no-such-field", f"{path}: the claim has no such item") from None
                kind = old.kind if old is not None else _kind_of(path)
                new = BillField(name=old.name if old else path.rsplit(".", 1)[-1], kind=kind,
                                value=_parse(path, kind, value), raw=old.raw if old else "",
                                confidence=1.0, box=old.box if old else None, needs_review=False,
                                note=f"{CORRECTED_NOTE}{who.name}")
                if path.startswith("items[") and value is None and path.endswith((".name", ".amount")):
                    raise ApiProblem(422, "required-field", f"{path} cannot be cleared")
                try:
                    claim = set_field(claim, path, new)
                except (KeyError, IndexError):
                    raise ApiProblem(422, "no-such-field", f"{path}: the claim has no such field") from None
                trail.append((path, None if old is None or old.value is None else str(old.value),
                              None if new.value is None else str(new.value)))
            claim = recheck(claim)
            if self.catalogue is not None or self.register is not None:
                from claims.bureau import after_correction

                claim = after_correction(claim, [p for p, _, _ in trail], self.catalogue, self.register)
            self.graph.write(lambda w: w.write_claim(claim))
            version, t = row["version"] + 1, now()
            c.execute("UPDATE claims SET document = ?, version = ?, needs_review = ?, hospital = ?, issue_date = ?, "
                      "updated_at = ? WHERE claim_id = ?",
                      (claim.model_dump_json(), version, int(_needs_review(claim)), _hospital(claim),
                       _issue_date(claim), t, claim_id))
            c.executemany("INSERT INTO corrections (claim_id, version, at, user, role, field, old, new, reason) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                          [(claim_id, version, t, who.name, who.role.value, p, o, n, reason) for p, o, n in trail])
        return self.get(claim_id)

    def decide(self, claim_id: str, status: str, if_match: str | None, reason: str, who: Principal) -> dict:
        with self.db.tx() as c:
            row = c.execute("SELECT * FROM claims WHERE claim_id = ?", (claim_id,)).fetchone()
            if row is None:
                raise ApiProblem(404, "claim-not-found", "no such claim")
            if if_match is not None:
                self._check_etag(row, if_match)
            if row["status"] != "pending":
                raise ApiProblem(409, "claim-decided", f"the claim is already {row['status']}")
            version, t = row["version"] + 1, now()
            c.execute("UPDATE claims SET status = ?, version = ?, updated_at = ? WHERE claim_id = ?",
                      (status, version, t, claim_id))
            c.execute("INSERT INTO corrections (claim_id, version, at, user, role, field, old, new, reason) "
                      "VALUES (?, ?, ?, ?, ?, 'status', ?, ?, ?)",
                      (claim_id, version, t, who.name, who.role.value, row["status"], status, reason))
        return self.get(claim_id)

    # --- page images -----------------------------------------------------------------------------------------
    def page_png(self, claim_id: str, n: int) -> bytes:
        import cv2

        from ocr.readers import open_document

        row = self.row(claim_id)
        path = self.files.get(row["doc_id"])
        if path is None:
            raise ApiProblem(404, "page-not-found", "the bill's file is not stored here")
        for page in open_document(path).pages():
            if page.index == n:
                ok, buf = cv2.imencode(".png", cv2.cvtColor(page.image, cv2.COLOR_RGB2BGR))
                if not ok:
                    raise ApiProblem(500, "encode-failed", "the page could not be encoded")
                return buf.tobytes()
        raise ApiProblem(404, "page-not-found", f"the bill has no page {n}")


def choose_match(claim: Claim, path: str, code: str | None, catalogue=None) -> tuple[Claim, str]:
    """``items[n].match_code``: the line's catalogue match becomes the runner-up with ``code`` (one of its
    ``alternatives``; the match it replaces joins them), method ``clerk``. With the catalogue loaded, the old
    match's restriction findings for the line are replaced by the new entry's. Returns the claim and the old code."""
    import re

    from core.records import CatalogCandidate

    i = int(re.fullmatch(r"items\[(\d+)\]\.match_code", path)[1])
    if i >= len(claim.items):
        raise ApiProblem(422, "no-such-field", f"{path}: the claim has no such item")
    item = claim.items[i]
    if item.match is None:
        raise ApiProblem(422, "no-match", f"{path}: the line has no catalogue match to choose among")
    old = item.match
    if code is None or code == old.code:
        raise ApiProblem(422, "not-an-alternative", f"{path}: name another of the line's alternatives "
                                                    f"(it is matched to {old.code} now)")
    pick = next((a for a in old.alternatives if a.code == code), None)
    if pick is None:
        raise ApiProblem(422, "not-an-alternative", f"{path}: {code!r} is not one of the line's catalogue "
                                                    f"alternatives ({', '.join(a.code for a in old.alternatives)})")
    was = CatalogCandidate(code=old.code, name=old.name, category=old.category, score=old.score)
    new = old.model_copy(update={"code": pick.code, "name": pick.name, "category": pick.category,
                                 "score": pick.score, "method": "clerk",
                                 "alternatives": (was, *(a for a in old.alternatives if a is not pick))})
    items = list(claim.items)
    items[i] = item.model_copy(update={"match": new})
    claim = claim.model_copy(update={"items": tuple(items)})
    if catalogue is not None:
        from claims.restrictions import PatientContext, line_ref, restriction_findings

        where = line_ref(item)
        try:
            entry = catalogue.entry_for(new)
        except StopIteration:  # the catalogue loaded now no longer lists it: keep the findings as they are
            return claim, old.code
        kept = tuple(f for f in claim.findings
                     if not (f.rule.startswith("restriction.") and (f.detail or "").startswith(where)))
        claim = claim.model_copy(update={"findings": kept + tuple(
            restriction_findings(entry, PatientContext.from_claim(claim), where=where))})
    return claim, old.code


def _kind_of(path: str) -> FieldKind:
    leaf = path.rsplit(".", 1)[-1]
    if path in ("total_figures", "total_words") or path.startswith("payments.") or leaf in ("amount", "tax"):
        return FieldKind.amount
    if leaf in ("quantity", "unit_price", "tax_rate"):
        return FieldKind.number
    if leaf in ("issue_date", "admitted", "discharged"):
        return FieldKind.date
    return FieldKind.text


def _parse(path: str, kind: FieldKind, value: str | None):
    if value is None:
        return None
    try:
        if kind in (FieldKind.amount, FieldKind.number):
            d = Decimal(value.strip())
            if not d.is_finite() or abs(d) >= Decimal("1e12"):
                raise InvalidOperation
            return d
        if kind is FieldKind.date:
            return date.fromisoformat(value.strip())
    except (InvalidOperation, ValueError):
        raise ApiProblem(422, "bad-value", f"{path}: {value!r} is not a valid {kind.value}") from None
    return value


CORRECTED_NOTE = "corrected by "


def _named_fields(claim: Claim) -> list[tuple[str, BillField | None]]:
    return [*((f"header.{k}", f) for k, f in claim.header.items()),
            *((f"payments.{k}", f) for k, f in claim.payments.items()),
            ("total_figures", claim.total_figures), ("total_words", claim.total_words),
            *((f"items[{i}].{n}", getattr(it, n)) for i, it in enumerate(claim.items) for n in _ITEM_FIELDS)]


def _field_paths(claim: Claim) -> set[str]:
    return {p for p, f in _named_fields(claim) if f is not None}


def confirmed_paths(claim: Claim) -> set[str]:
    """Paths of the fields a person set (a clerk's correction: note ``corrected by <user>``)."""
    return {p for p, f in _named_fields(claim) if f is not None and (f.note or "").startswith(CORRECTED_NOTE)}


def recheck(claim: Claim) -> Claim:
    """The checks again on a corrected claim: the previous checks' findings are replaced, not added to.

    A field a clerk set is confirmed by a person: it is not flagged as an amount no check pins down
    (``amounts.unverified``), and its ``needs_review`` is cleared unless a re-run check (failing or unreadable)
    flags it again. A flag the earlier checks raised on a field nobody corrected is settled too when the re-run
    checks no longer raise it (an amount still unproven is flagged again); flags of the reading itself stay: a
    field read below the OCR review threshold, unreadable, or carrying a reading note (folded look-alikes)."""
    import dataclasses

    from claims.checks import apply_report, build_checks, get_field, run_checks, set_field
    from claims.structure import REVIEW_BELOW

    if claim.doc_type is DocumentType.not_a_bill:
        return claim
    rules = {check.rule for check in build_checks(claim)} | {"amounts.unverified"}
    claim = claim.model_copy(update={"findings": tuple(f for f in claim.findings if f.rule not in rules)})
    report = run_checks(claim)
    confirmed = confirmed_paths(claim)
    report = dataclasses.replace(report, unverified=frozenset(report.unverified - confirmed))
    for path in sorted(_field_paths(claim) - set(report.needs_review)):
        f = get_field(claim, path)
        if f is None or not f.needs_review:
            continue
        if path in confirmed or (f.value is not None and f.confidence >= REVIEW_BELOW and not f.note):
            claim = set_field(claim, path, f.model_copy(update={"needs_review": False}))
    return apply_report(claim, report)
