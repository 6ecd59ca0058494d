"""Reconciliation in the graph (issue 21): read a claim's inputs, write its findings (Neo4j 5 Cypher, every
value a parameter; runs unchanged on the embedded ArcadeDB).

Graph model: the HIS-feed stage (``graph.feed_rows``, DFT^P03 → FT1) and this module write charges alike:

```
(:Encounter {eid})-[:HAS_CHARGE]->(:Charge {charge_id, eid, pid, code, name, quantity, unit_price, amount,
                                           posted_at, [type], [category, unit, source]})
(:Claim {claim_id})-[:FOR_ENCOUNTER]->(:Encounter)                 which stay a claim bills
(:Claim)-[:HAS_FINDING]->(:Finding {finding_id, claim_id, seq, rule, severity, detail, message, evidence_json,
                                    source: 'reconcile'})
(:Finding)-[:CITES {role}]->(:Charge | :LineItem | :Document | :Disease | :Symptom | :Procedure)   evidence
(:Claim {reconciled_at, reconciliation_passed, reconciliation_findings})
```

- ``Charge.charge_id`` is unique (constraint ``charge_charge_id``, the feeds' name too). A charges file writes
  ``posted_at`` as ISO text (the feeds write ISO timestamps), amounts as exact decimal strings (the feeds write
  numbers: both are read), ``source = 'charges-file'``, plus ``category`` (费用项目) and ``unit`` when the file has
  them. A row without a ``charge_id`` gets a derived one (the sha256 of the encounter, item, figures and date,
  and the row's occurrence among equal rows), so writing the same file twice changes nothing.
- Reconciliation findings are keyed ``"<claim_id>:recon:<n>"`` and carry ``source = 'reconcile'``; a new run
  ``DETACH DELETE``s the claim's previous reconciliation findings and writes the new ones in one transaction
  (idempotent; the checks' own findings, ``"<claim_id>:<n>"``, are left alone; a new version of the claim,
  which the writer rewrites with its items and findings, drops them until reconciliation runs again).
  ``CITES.role`` is ``charge`` or ``line`` (what was compared), ``satisfied_by`` or ``not_counted`` (a
  diagnosis's document, with ``sentence`` and ``evidence``, and concept: affirmed and counted, or
  negated/family/possible/historical and not). Restrictions that held are kept on the claim as
  ``reconciliation_passed`` (JSON) with the diagnosis that met them.

The visit's context is read as the feeds write it: ``Patient.sex`` ('M'/'F', or 男/女) and ``birth_date`` (or
``birth_year``), ``Encounter.admitted_at``, ``discharged_at``, ``visit_class`` (PV1-2: I inpatient; O, E
outpatient); besides those ``Encounter.institution_level`` (1-3, from the bureau's register), ``department`` and
``insurance_type``, which no feed sends yet (a charges file may). The claim's printed header fills what the graph
lacks. The patient's facts for a disease restriction are every ``Disease``, ``Symptom`` and ``Procedure`` mention of
the patient's documents (a 限…使用 rule may name 发热 or 器官移植) with its assertion, document and sentence.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from claims.reconcile import Charge, Diagnosis, Reconciliation, RuleBook, Tolerance, VisitContext, reconcile
from core.records import (
    Assertion,
    BillField,
    CatalogMatch,
    Claim,
    DocumentType,
    FieldKind,
    Finding,
    LineItem,
    utcnow,
)
from graph.writer import GraphWriter

__all__ = ["CHARGE_LABEL", "CHARGE_REL", "SCHEMA", "charges_from_file", "claim_from_graph", "claim_ids",
           "ensure_schema", "link_claim", "read_inputs", "reconcile_claim", "reconciliation_view", "write_charges",
           "write_findings"]

CHARGE_LABEL = "Charge"
CHARGE_KEY = "charge_id"
CHARGE_REL = "HAS_CHARGE"
SCHEMA = (
    "CREATE CONSTRAINT charge_charge_id IF NOT EXISTS FOR (n:Charge) REQUIRE n.charge_id IS UNIQUE",
)


def ensure_schema(driver, database: str | None = None) -> None:
    with driver.session(database=database) as s:
        for statement in SCHEMA:
            s.run(statement).consume()


class _Open:
    """An open read session standing in for the driver: a claim's dozen reads share one session."""

    def __init__(self, session):
        self.session = session


def _run(driver, database, query: str, write: bool = False, **params) -> list[dict]:
    if isinstance(driver, _Open):
        return driver.session.run(query, params).data()
    with driver.session(database=database, default_access_mode="WRITE" if write else "READ") as s:
        return s.run(query, params).data()


# --- charges --------------------------------------------------------------------------------------------

_FIELDS = {  # charges-file column -> Charge field (first present wins)
    "encounter_id": ("encounter_id", "eid", "encounter", "住院号", "就诊号"),
    "patient_id": ("patient_id", "pid", "患者编号"),
    "charge_id": ("charge_id", "id", "收费流水号"),
    "code": ("item_code", "code", "项目编码", "编码"),
    "name": ("item_name", "name", "项目名称", "名称"),
    "quantity": ("quantity", "qty", "数量"),
    "unit_price": ("unit_price", "price", "单价"),
    "amount": ("amount", "金额"),
    "day": ("date", "day", "charged_on", "收费日期", "日期"),
    "category": ("category", "费用项目", "费用类别"),
    "unit": ("unit", "单位"),
}
# optional per-row visit facts, written onto the Encounter / Patient (until the feeds send PV1/PID)
_ENCOUNTER_PROPS = ("setting", "admitted", "discharged", "institution_level", "department", "insurance_type")
_PATIENT_PROPS = ("sex", "birth_date")
_DATE_PROPS = frozenset({"admitted", "discharged", "birth_date"})


def _pick(row: dict, field: str) -> Any:
    for k in _FIELDS[field]:
        v = row.get(k)
        if v not in (None, ""):
            return v
    return None


def _dec(v) -> Decimal | None:
    if v in (None, ""):
        return None
    try:
        return Decimal(str(v).replace(",", "").replace("¥", "").strip())
    except InvalidOperation as exc:
        raise ValueError(f"not a number: {v!r}") from exc


def charges_from_file(path: str | Path) -> tuple[list[Charge], dict[str, dict], dict[str, dict]]:
    """A charges file (CSV with a header row, or JSON lines) → (charges, encounter facts by eid, patient facts
    by pid). Columns: encounter_id, item_code, item_name, quantity, unit_price, amount, date (and optionally
    charge_id, patient_id, category, unit; the visit facts setting, admitted, discharged, institution_level,
    department, insurance_type; the patient facts sex, birth_date). A row without an amount takes
    quantity × unit price."""
    path = Path(path)
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix.lower() in (".jsonl", ".json", ".ndjson") or text.lstrip().startswith("{"):
        rows = [json.loads(line) for line in text.splitlines() if line.strip()]
    else:
        rows = list(csv.DictReader(text.splitlines()))
    charges, encounters, patients = [], {}, {}
    seen: Counter = Counter()
    for n, row in enumerate(rows, 1):
        eid = _pick(row, "encounter_id")
        if not eid:
            raise ValueError(f"{path}:{n}: no encounter id")
        qty = _dec(_pick(row, "quantity")) or Decimal(1)
        price = _dec(_pick(row, "unit_price"))
        amount = _dec(_pick(row, "amount"))
        if amount is None:
            if price is None:
                raise ValueError(f"{path}:{n}: neither amount nor unit price")
            amount = (qty * price).quantize(Decimal("0.01"))
        day = _pick(row, "day")
        day = date.fromisoformat(str(day)[:10]) if day else None
        fields = {"encounter_id": str(eid), "code": str(_pick(row, "code") or ""), "name": str(_pick(row, "name") or ""),
                  "quantity": qty, "unit_price": price, "amount": amount, "day": day,
                  "category": _pick(row, "category"), "unit": _pick(row, "unit")}
        cid = _pick(row, "charge_id")
        if not cid:
            ident = json.dumps({k: str(v) for k, v in fields.items()}, sort_keys=True, ensure_ascii=False)
            seen[ident] += 1
            cid = hashlib.sha256(f"{ident}#{seen[ident]}".encode()).hexdigest()[:24]
        charges.append(Charge(charge_id=str(cid), **fields))
        enc = encounters.setdefault(str(eid), {})
        pid = _pick(row, "patient_id")
        if pid:
            enc["patient_id"] = str(pid)
        for k in _ENCOUNTER_PROPS:
            if row.get(k) not in (None, ""):
                enc[k] = row[k]
        if pid:
            pat = patients.setdefault(str(pid), {})
            for k in _PATIENT_PROPS:
                if row.get(k) not in (None, ""):
                    pat[k] = row[k]
    return charges, encounters, patients


_FEED_NAMES = {"admitted": "admitted_at", "discharged": "discharged_at", "setting": "visit_class"}
_VISIT_CLASS = {"inpatient": "I", "outpatient": "O", "住院": "I", "门诊": "O", "i": "I", "o": "O", "e": "E"}
_SEX_CODE = {"男": "M", "女": "F", "m": "M", "f": "F", "male": "M", "female": "F"}


def _prop(k: str, v) -> tuple[str, Any]:
    """A charges file's visit fact as the feeds store it: (property name, value)."""
    if k in _DATE_PROPS:
        return _FEED_NAMES.get(k, k), date.fromisoformat(str(v)[:10]).isoformat()
    if k == "setting":
        return "visit_class", _VISIT_CLASS.get(str(v).strip().lower(), str(v))
    if k == "sex":
        return "sex", _SEX_CODE.get(str(v).strip().lower(), str(v))
    if k == "institution_level":
        return k, int(v)
    return k, str(v)


_WRITE_CHARGES = """
UNWIND $rows AS r
MERGE (e:Encounter {eid: r.eid})
MERGE (ch:Charge {charge_id: r.charge_id}) SET ch += r
MERGE (e)-[:HAS_CHARGE]->(ch)
"""
_WRITE_ENCOUNTERS = """
UNWIND $rows AS r
MERGE (e:Encounter {eid: r.eid}) SET e += r.props
WITH e, r WHERE r.pid IS NOT NULL
MERGE (p:Patient {pid: r.pid}) MERGE (p)-[:HAS_ENCOUNTER]->(e)
"""
_WRITE_PATIENTS = "UNWIND $rows AS r MERGE (p:Patient {pid: r.pid}) SET p += r.props"


def charge_row(c: Charge, pid: str | None = None, source: str = "charges-file") -> dict:
    return {"charge_id": c.charge_id, "eid": c.encounter_id, "pid": pid, "code": c.code, "name": c.name,
            "quantity": str(c.quantity), "unit_price": None if c.unit_price is None else str(c.unit_price),
            "amount": str(c.amount), "posted_at": c.day.isoformat() if c.day else None, "category": c.category,
            "unit": c.unit, "source": source}


def write_charges(driver, charges: Sequence[Charge], encounters: dict[str, dict] | None = None,
                  patients: dict[str, dict] | None = None, database: str | None = None, batch: int = 1000) -> int:
    """MERGE charges under their encounters (and the encounters' and patients' visit facts); idempotent."""
    ensure_schema(driver, database)
    enc_rows = [{"eid": eid, "pid": facts.get("patient_id"),
                 "props": dict(_prop(k, facts[k]) for k in _ENCOUNTER_PROPS if k in facts)}
                for eid, facts in (encounters or {}).items()]
    pat_rows = [{"pid": pid, "props": dict(_prop(k, v) for k, v in facts.items() if k in _PATIENT_PROPS)}
                for pid, facts in (patients or {}).items()]
    rows = [charge_row(c, (encounters or {}).get(c.encounter_id, {}).get("patient_id")) for c in charges]
    writer = GraphWriter(driver, database)  # its transactions and retries (graph.writer.in_transaction says why)
    if pat_rows:
        writer.transact(lambda tx: tx.run(_WRITE_PATIENTS, rows=pat_rows).consume())
    if enc_rows:
        writer.transact(lambda tx: tx.run(_WRITE_ENCOUNTERS, rows=enc_rows).consume())
    for i in range(0, len(rows), batch):
        part = rows[i:i + batch]
        writer.transact(lambda tx, part=part: tx.run(_WRITE_CHARGES, rows=part).consume())
    return len(rows)


def link_claim(driver, claim_id: str, encounter_id: str, database: str | None = None) -> None:
    """Say which stay a claim bills: ``(:Claim)-[:FOR_ENCOUNTER]->(:Encounter)`` (one per claim)."""
    _run(driver, database, "MATCH (c:Claim {claim_id: $cid}) OPTIONAL MATCH (c)-[x:FOR_ENCOUNTER]->() DELETE x "
                           "WITH DISTINCT c MERGE (e:Encounter {eid: $eid}) MERGE (c)-[:FOR_ENCOUNTER]->(e)",
         write=True, cid=claim_id, eid=encounter_id)


# --- reading a claim's inputs --------------------------------------------------------------------------------

_CLAIM = """
MATCH (c:Claim {claim_id: $cid})
OPTIONAL MATCH (c)-[:BILLED_TO]->(p:Patient)
OPTIONAL MATCH (c)-[:FOR_ENCOUNTER]->(e:Encounter)
RETURN properties(c) AS claim, p.pid AS pid, e.eid AS eid
"""
_ITEMS = """
UNWIND $cids AS cid
MATCH (c:Claim {claim_id: cid})-[:HAS_ITEM]->(i:LineItem)
OPTIONAL MATCH (i)-[m:MATCHES]->(ci:CatalogItem)
RETURN cid, properties(i) AS item, ci.code AS code, ci.name AS name, ci.category AS category, m.score AS score,
       m.method AS method
"""
_CLAIMS = "UNWIND $cids AS cid MATCH (c:Claim {claim_id: cid}) RETURN cid, properties(c) AS claim"
_ENCOUNTER_OF = """
MATCH (p:Patient {pid: $pid})-[:HAS_ENCOUNTER]->(e:Encounter)
RETURN e.eid AS eid, e.admitted_at AS admitted, e.discharged_at AS discharged
"""
_ENCOUNTER = """
MATCH (e:Encounter {eid: $eid})
OPTIONAL MATCH (p:Patient)-[:HAS_ENCOUNTER]->(e)
RETURN properties(e) AS enc, p.pid AS pid
"""
_PATIENT = "MATCH (p:Patient {pid: $pid}) RETURN properties(p) AS p"
_CHARGES = "MATCH (:Encounter {eid: $eid})-[:HAS_CHARGE]->(ch:Charge) RETURN properties(ch) AS ch"
_DIAGNOSES = """
MATCH (p:Patient {pid: $pid})
CALL {
  WITH p MATCH (p)-[:HAS_ENCOUNTER]->(:Encounter)-[:HAS_DOCUMENT]->(d:Document) RETURN d
  UNION
  WITH p MATCH (p)-[:HAS_DOCUMENT]->(d:Document) RETURN d
}
OPTIONAL MATCH (d)-[m:MENTIONS]->(c:Concept) WHERE c:Disease OR c:Symptom OR c:Procedure
RETURN d.doc_id AS doc_id, c.name AS name, c.key AS key, labels(c) AS labels, m.text AS text,
       m.assertion AS assertion, m.sentence AS sentence, m.evidence AS evidence
"""
# what a 限…使用 rule may name: a disease, a symptom (发热, 疼痛) or a procedure (器官移植, 透析)
FACT_LABELS = ("Disease", "Symptom", "Procedure")
_STAY_CLAIMS = """
MATCH (o:Claim)-[:FOR_ENCOUNTER]->(:Encounter {eid: $eid}) WHERE o.claim_id <> $cid RETURN o.claim_id AS id
UNION
MATCH (:Patient {pid: $pid})<-[:BILLED_TO]-(o:Claim)
WHERE o.claim_id <> $cid AND $ino IS NOT NULL AND o.inpatient_no = $ino RETURN o.claim_id AS id
UNION
MATCH (:Patient {pid: $pid})<-[:BILLED_TO]-(o:Claim)
WHERE o.claim_id <> $cid AND $bno IS NOT NULL AND o.bill_no = $bno AND o.bill_code = $bcode RETURN o.claim_id AS id
"""


def _date(v) -> date | None:
    if v is None or v == "":
        return None
    if hasattr(v, "to_native"):
        v = v.to_native()
    if isinstance(v, datetime):
        return v.date()
    if isinstance(v, date):
        return v
    try:
        return date.fromisoformat(str(v)[:10])
    except ValueError:
        return None


_DATE_HEADERS = frozenset({"issue_date", "admitted", "discharged"})


def claim_from_graph(props: dict, items: Iterable[dict]) -> Claim:
    """A ``Claim`` rebuilt from its stored node and line items (values as the writer stored them)."""
    header = {}
    for k, f in json.loads(props.get("header_json") or "{}").items():
        kind = FieldKind.date if k in _DATE_HEADERS and _date(f.get("value")) else FieldKind.text
        value = _date(f.get("value")) if kind is FieldKind.date else f.get("value")
        header[k] = BillField(name=k, value=value, kind=kind, raw=f.get("raw") or "",
                              confidence=f.get("confidence", 1.0), needs_review=bool(f.get("needs_review")))
    lines = []
    for r in sorted(items, key=lambda r: r["item"]["line_no"]):
        it = r["item"]

        def num(k, kind=FieldKind.number, it=it):
            return None if it.get(k) in (None, "") else BillField(name=k, value=Decimal(str(it[k])), kind=kind)

        def txt(k, it=it):
            return None if it.get(k) in (None, "") else BillField(name=k, value=str(it[k]))

        match = None if r.get("code") is None else CatalogMatch(
            code=r["code"], name=r["name"] or "", category=r.get("category"), score=float(r.get("score") or 0),
            method=r.get("method") or "fuzzy")
        lines.append(LineItem(line_no=it["line_no"], name=BillField(name="name", value=str(it.get("name") or "")),
                              amount=num("amount", FieldKind.amount) or BillField(name="amount", kind=FieldKind.amount),
                              quantity=num("quantity"), unit_price=num("unit_price"), unit=txt("unit"),
                              spec=txt("spec"), item_class=txt("item_class"), match=match))
    total = props.get("total")
    return Claim(doc_id=props.get("doc_id") or "", page=int(props.get("page") or 0),
                 doc_type=DocumentType(props.get("doc_type") or "other_invoice"), header=header, items=tuple(lines),
                 total_figures=None if total in (None, "") else BillField(name="total", value=Decimal(str(total)),
                                                                          kind=FieldKind.amount))


def _claims(driver, database, cids: Sequence[str]) -> dict[str, Claim]:
    if not cids:
        return {}
    heads = {r["cid"]: r["claim"] for r in _run(driver, database, _CLAIMS, cids=list(cids))}
    items: dict[str, list] = {cid: [] for cid in heads}
    for r in _run(driver, database, _ITEMS, cids=list(cids)):
        items.setdefault(r["cid"], []).append(r)
    return {cid: claim_from_graph(heads[cid], items.get(cid, [])) for cid in heads}


def _charge(p: dict, eid: str) -> Charge:
    """A stored charge (a charges file's or a feed's: numbers as text or as numbers, ``posted_at`` ISO text)."""
    return Charge(charge_id=p["charge_id"], encounter_id=p.get("eid") or eid, code=p.get("code") or "",
                  name=p.get("name") or "", quantity=Decimal(str(p.get("quantity") or 1)),
                  unit_price=None if p.get("unit_price") in (None, "") else Decimal(str(p["unit_price"])),
                  amount=Decimal(str(p.get("amount") or 0)), day=_date(p.get("posted_at")),
                  category=p.get("category"), unit=p.get("unit"))


def _resolve_encounter(driver, database, props: dict, pid: str | None, linked: str | None) -> str | None:
    """The stay a claim bills: its FOR_ENCOUNTER link, else its ``encounter_id`` or printed 住院号 when an
    Encounter has that id, else the patient's only encounter (or the one whose dates cover the claim's)."""
    if linked:
        return linked
    for cand in (props.get("encounter_id"), props.get("inpatient_no")):
        if cand and _run(driver, database, "MATCH (e:Encounter {eid: $eid}) RETURN e.eid AS eid", eid=str(cand)):
            return str(cand)
    if not pid:
        return None
    encs = _run(driver, database, _ENCOUNTER_OF, pid=pid)
    if len(encs) == 1:
        return encs[0]["eid"]
    day = _date(props.get("admitted")) or _date(props.get("issue_date"))
    if day:
        covering = [e for e in encs if _date(e["admitted"]) and _date(e["admitted"]) <= day
                    and (_date(e["discharged"]) is None or day <= _date(e["discharged"]))]
        if len(covering) == 1:
            return covering[0]["eid"]
    return None


_SETTING = {"I": "inpatient", "O": "outpatient", "E": "outpatient"}  # PV1-2 patient class
_SEX = {"男": "男", "女": "女", "m": "男", "f": "女", "male": "男", "female": "女", "1": "男", "2": "女"}


def read_inputs(driver, claim_id: str, database: str | None = None, encounter_id: str | None = None
                ) -> tuple[Claim, VisitContext, list[Charge], list[tuple[str, Claim]]] | None:
    """(claim, context, the encounter's charges, the stay's other claims) for a claim id; None if unknown. The
    stay's other claims: those linked to the same encounter, the patient's with the same printed 住院号, and the
    patient's with the same bill (票据代码 + 票据号码: a rescan of one receipt is another file, another claim)."""
    with driver.session(database=database, default_access_mode="READ") as s:
        return _read_inputs(_Open(s), claim_id, database, encounter_id)


def _read_inputs(driver, claim_id: str, database, encounter_id):
    head = _run(driver, database, _CLAIM, cid=claim_id)
    if not head:
        return None
    props, pid = head[0]["claim"], head[0]["pid"]
    claim = _claims(driver, database, [claim_id])[claim_id]
    eid = encounter_id or _resolve_encounter(driver, database, props, pid, head[0]["eid"])
    enc: dict = {}
    if eid:
        got = _run(driver, database, _ENCOUNTER, eid=eid)
        if got:
            enc = got[0]["enc"] or {}
            pid = pid or got[0]["pid"]
    patient = (_run(driver, database, _PATIENT, pid=pid) or [{"p": {}}])[0]["p"] if pid else {}
    charges = [_charge(r["ch"], eid) for r in _run(driver, database, _CHARGES, eid=eid)] if eid else []
    diagnoses, docs = [], set()
    if pid:
        for r in _run(driver, database, _DIAGNOSES, pid=pid):
            docs.add(r["doc_id"])
            if r["name"] is None and r["key"] is None:
                continue
            try:
                assertion = Assertion(r["assertion"] or "affirmed")
            except ValueError:
                assertion = Assertion.possible
            label = next((x for x in r["labels"] or () if x in FACT_LABELS), "Disease")
            diagnoses.append(Diagnosis(name=r["name"] or r["text"] or r["key"], key=r["key"] or "",
                                       assertion=assertion, doc_id=r["doc_id"], sentence=r["sentence"],
                                       evidence=r["evidence"] or "", label=label))
    sex = patient.get("sex") or props.get("sex")
    birth = _date(patient.get("birth_date"))
    if birth is None and patient.get("birth_year"):
        birth = date(int(patient["birth_year"]), 7, 1)  # mid-year: within half a year either way
    from claims.restrictions import parse_age_years

    level = enc.get("institution_level")
    ctx = VisitContext(
        patient_id=pid, encounter_id=eid, sex=_SEX.get(str(sex).strip().lower()) if sex else None, birth_date=birth,
        age_years=parse_age_years(props["age"]) if props.get("age") else None,
        insurance_type=enc.get("insurance_type") or props.get("insurance_type"),
        institution_level=int(level) if level not in (None, "") else None,
        setting=_SETTING.get(str(enc.get("visit_class") or "").upper()) or {
            "inpatient_e_receipt": "inpatient", "outpatient_e_receipt": "outpatient"}.get(props.get("doc_type")),
        admitted=_date(enc.get("admitted_at")) or _date(props.get("admitted")),
        discharged=_date(enc.get("discharged_at")) or _date(props.get("discharged")),
        department=enc.get("department"), diagnoses=tuple(diagnoses), records=len(docs))
    other_ids = [r["id"] for r in _run(driver, database, _STAY_CLAIMS, cid=claim_id, eid=eid or "", pid=pid or "",
                                       ino=props.get("inpatient_no"), bno=props.get("bill_no"),
                                       bcode=props.get("bill_code"))]
    others = sorted(_claims(driver, database, sorted(set(other_ids))).items())
    return claim, ctx, charges, others


# --- writing findings -------------------------------------------------------------------------------------

_DROP = ("MATCH (c:Claim {claim_id: $cid})-[:HAS_FINDING]->(f:Finding) WHERE f.source = 'reconcile' "
         "DETACH DELETE f")
_CREATE = ("MATCH (c:Claim {claim_id: $cid}) UNWIND $rows AS r "
           "CREATE (f:Finding) SET f = r CREATE (c)-[:HAS_FINDING]->(f)")
_CLAIM_SET = ("MATCH (c:Claim {claim_id: $cid}) SET c.reconciled_at = $now, c.reconciliation_passed = $passed, "
              "c.reconciliation_findings = $n")
_CITE_CHARGE = ("UNWIND $rows AS r MATCH (f:Finding {finding_id: r.fid}) MATCH (x:Charge {charge_id: r.key}) "
                "MERGE (f)-[c:CITES {role: r.role}]->(x)")
_CITE_LINE = ("UNWIND $rows AS r MATCH (f:Finding {finding_id: r.fid}) "
              "MATCH (x:LineItem {claim_id: r.claim_id, line_no: r.line_no}) MERGE (f)-[c:CITES {role: r.role}]->(x)")
_CITE_DOC = ("UNWIND $rows AS r MATCH (f:Finding {finding_id: r.fid}) MATCH (x:Document {doc_id: r.key}) "
             "MERGE (f)-[c:CITES {role: r.role}]->(x) SET c.sentence = r.sentence, c.evidence = r.evidence")
# one statement per label of FACT_LABELS (labels cannot be parameters; these are constants)
_CITE_CONCEPT = {label: ("UNWIND $rows AS r MATCH (f:Finding {finding_id: r.fid}) "
                         f"MATCH (x:{label} {{key: r.key}}) MERGE (f)-[c:CITES {{role: r.role}}]->(x)")
                 for label in ("Disease", "Symptom", "Procedure")}
_LINK_STAY = ("MATCH (c:Claim {claim_id: $cid}) MATCH (e:Encounter {eid: $eid}) "
              "WHERE NOT EXISTS { MATCH (c)-[:FOR_ENCOUNTER]->(:Encounter) } MERGE (c)-[:FOR_ENCOUNTER]->(e)")


def _cites(fid: str, f: Finding) -> dict[str, list[dict]]:
    ev = f.evidence or {}
    out: dict[str, list[dict]] = {"charge": [], "line": [], "doc": [], **{k: [] for k in _CITE_CONCEPT}}
    charges = list(ev.get("charges") or [])
    out["charge"] += [{"fid": fid, "key": c["charge_id"], "role": "charge"} for c in charges if c.get("charge_id")]
    fields = ev.get("claim_fields")
    for line in (fields if isinstance(fields, list) else [fields] if isinstance(fields, dict) else []):
        if "line_no" in line:
            out["line"].append({"fid": fid, "claim_id": ev.get("claim_id"), "line_no": line["line_no"], "role": "line"})
    facts = ev.get("facts") or {}
    for role in ("satisfied_by", "not_counted"):
        for d in facts.get(role) or []:
            if d.get("doc_id"):
                out["doc"].append({"fid": fid, "key": d["doc_id"], "role": role, "sentence": d.get("sentence"),
                                   "evidence": d.get("evidence")})
            if d.get("key") and d.get("label") in _CITE_CONCEPT:
                out[d["label"]].append({"fid": fid, "key": d["key"], "role": role})
    return out


def write_findings(driver, rec: Reconciliation, database: str | None = None) -> int:
    """Replace the claim's reconciliation findings with ``rec``'s, linked to their evidence nodes (one
    transaction; rerunning it writes the same nodes again)."""
    cid = rec.claim_id
    rows, cites = [], {"charge": [], "line": [], "doc": [], **{k: [] for k in _CITE_CONCEPT}}
    for n, f in enumerate(rec.findings):
        fid = f"{cid}:recon:{n}"
        rows.append({"finding_id": fid, "claim_id": cid, "seq": 1000 + n, "rule": f.rule, "severity": f.severity,
                     "detail": f.detail, "message": f.message, "source": "reconcile",
                     "evidence_json": json.dumps(f.evidence, ensure_ascii=False, default=str)})
        for k, v in _cites(fid, f).items():
            cites[k] += v
    passed = json.dumps(list(rec.passed), ensure_ascii=False, default=str)
    now = utcnow().isoformat()

    def work(tx):
        tx.run(_DROP, cid=cid).consume()
        if rows:
            tx.run(_CREATE, cid=cid, rows=rows).consume()
        for query, key in ((_CITE_CHARGE, "charge"), (_CITE_LINE, "line"), (_CITE_DOC, "doc"),
                           *((q, label) for label, q in _CITE_CONCEPT.items())):
            if cites[key]:
                tx.run(query, rows=cites[key]).consume()
        tx.run(_CLAIM_SET, cid=cid, now=now, passed=passed, n=len(rows)).consume()
        if rec.context is not None and rec.context.encounter_id:
            tx.run(_LINK_STAY, cid=cid, eid=rec.context.encounter_id).consume()

    GraphWriter(driver, database).transact(work)
    return len(rows)


def reconcile_claim(driver, claim_id: str, rulebook: RuleBook | None = None, *, tolerance: Tolerance | None = None,
                    database: str | None = None, encounter_id: str | None = None, write: bool = True
                    ) -> Reconciliation | None:
    """Read a claim's inputs from the graph, run every rule, and (``write``) replace its findings in the graph.
    None for an unknown claim. The function a reconciliation endpoint calls."""
    got = read_inputs(driver, claim_id, database, encounter_id)
    if got is None:
        return None
    claim, ctx, charges, others = got
    rec = reconcile(claim, claim_id=claim_id, charges=charges, context=ctx, rulebook=rulebook, others=others,
                    tolerance=tolerance)
    if write:
        write_findings(driver, rec, database)
    return rec


_VIEW = """
MATCH (c:Claim {claim_id: $cid})
OPTIONAL MATCH (c)-[:HAS_FINDING]->(f:Finding) WHERE f.source = 'reconcile'
OPTIONAL MATCH (f)-[x:CITES]->(n)
RETURN c.reconciled_at AS reconciled_at, c.reconciliation_passed AS passed, f.finding_id AS finding_id,
       f.rule AS rule, f.severity AS severity, f.detail AS detail, f.message AS message, f.seq AS seq,
       f.evidence_json AS evidence, collect(CASE WHEN x IS NULL THEN null ELSE
         {role: x.role, labels: labels(n), id: coalesce(n.charge_id, n.doc_id, n.key, n.claim_id + ':' + toString(n.line_no)),
          sentence: x.sentence} END) AS cites
"""


def reconciliation_view(driver, claim_id: str, database: str | None = None) -> dict | None:
    """The stored reconciliation of a claim: when it ran, its findings (rule, severity, message, evidence and
    the nodes each cites) in order, and the restrictions that held; None for an unknown claim. Read-only: for
    ``GET /v1/claims/{id}/reconciliation``."""
    rows = _run(driver, database, _VIEW, cid=claim_id)
    if not rows:
        return None
    findings = [{"finding_id": r["finding_id"], "rule": r["rule"], "severity": r["severity"], "detail": r["detail"],
                 "message": r["message"], "evidence": json.loads(r["evidence"] or "{}"),
                 "cites": [c for c in r["cites"] if c]} for r in rows if r["finding_id"]]
    findings.sort(key=lambda f: int(f["finding_id"].rsplit(":", 1)[1]))
    return {"claim_id": claim_id, "reconciled_at": rows[0]["reconciled_at"],
            "passed": json.loads(rows[0]["passed"]) if rows[0]["passed"] else [], "findings": findings}


def claim_ids(driver, since: date | None = None, database: str | None = None) -> list[str]:
    """Every claim id (with ``since``: claims issued, admitted or written on or after that day), sorted."""
    rows = _run(driver, database, "MATCH (c:Claim) RETURN c.claim_id AS id, c.issue_date AS issued, "
                                  "c.admitted AS admitted, c.written_at AS written")
    out = []
    for r in rows:
        if since is not None:
            day = _date(r["issued"]) or _date(r["admitted"]) or _date(r["written"])
            if day is None or day < since:
                continue
        out.append(r["id"])
    return sorted(out)
