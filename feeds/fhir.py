"""FHIR R4 resources into the feed: validation (``fhir.resources`` R4B models), the durable append, and the
mapping to feed messages. Plain functions: the API (``POST /fhir/r4/Bundle``, ``POST /fhir/r4/{type}``, role
``integration``) calls :func:`accept`; the streaming pipeline calls :func:`parse_entry`.

``fhir.resources`` 8 defaults to R5 models; R4 payloads are validated with ``fhir.resources.R4B`` (an R4
``Encounter.class`` Coding fails R5 validation). Accepted types: Bundle (``batch`` or ``transaction``) and
Patient, Encounter, DocumentReference, Composition, Observation, Condition, MedicationRequest, ChargeItem.

:func:`accept` answers ``(status, body)``: 201 with an OperationOutcome (and the stream entry id) once the raw
payload is appended to the stream; 400 (not JSON), 413 (too large, too many entries), 422 (schema errors,
wrong or unsupported resource types) with an OperationOutcome saying why, the payload kept in the
dead-letter stream; 503 when the durable store cannot be reached (nothing stored: the client retries).

Mapping (:func:`parse_entry`), each resource's version being ``meta.lastUpdated`` (else the time the gateway
received it) + ``|`` + ``type/id``, so the graph keeps the newest (graph.feed_rows):

- Patient -> patient (gender, birthDate); Encounter -> encounter (status: planned/arrived/triaged/in-progress
  -> admitted, finished -> discharged, cancelled/entered-in-error -> cancelled; period; location; class)
- Observation -> a lab result (code, valueQuantity/valueString, referenceRange, interpretation, status,
  effective time); a string value longer than 200 characters -> a clinical document
- DocumentReference (attachment ``data``, base64 text/plain) and Composition (section narratives) -> clinical
  documents for NER; ChargeItem -> a charge (code, quantity, priceOverride)
- Condition and MedicationRequest -> a clinical document of their coded text ("诊断：…", "用药：…"), so they
  reach the graph through the same NER and assertion stages as notes
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
from datetime import UTC, datetime

from core.records import ClinicalRecord, utcnow
from feeds.hl7v2 import FeedError, FeedMessage, iso

RESOURCE_TYPES = ("Patient", "Encounter", "DocumentReference", "Composition", "Observation", "Condition",
                  "MedicationRequest", "ChargeItem")
MAX_BYTES = 10 * 1024 * 1024
MAX_ENTRIES = 1000


def _outcome(severity: str, code: str, text: str, **extra) -> dict:
    out = {"resourceType": "OperationOutcome",
           "issue": [{"severity": severity, "code": code, "diagnostics": text[:2000]}]}
    out.update(extra)
    return out


def _model(resource_type: str):
    from fhir.resources.R4B import get_fhir_model_class

    return get_fhir_model_class(resource_type)


def validate(payload: bytes | str | dict, expected: str | None = None, max_bytes: int = MAX_BYTES,
             max_entries: int = MAX_ENTRIES) -> dict:
    """The resource as a dict once it is valid R4 (R4B models); raises :class:`FeedError` with ``code`` as an
    HTTP status in text ("400", "413", "422") and the reason."""
    if isinstance(payload, (bytes, str)):
        if len(payload) > max_bytes:
            raise FeedError("413", f"payload of {len(payload)} bytes exceeds the limit of {max_bytes}")
        try:
            data = json.loads(payload)
        except (ValueError, UnicodeDecodeError) as exc:
            raise FeedError("400", f"payload is not JSON: {exc}") from None
    else:
        data = payload
    if not isinstance(data, dict):
        raise FeedError("422", "payload is not a FHIR resource (a JSON object)")
    rtype = data.get("resourceType")
    if expected and rtype != expected:
        raise FeedError("422", f"resourceType {rtype!r} does not match the endpoint's type {expected!r}")
    if rtype == "Bundle":
        if data.get("type") not in ("batch", "transaction"):
            raise FeedError("422", f"Bundle.type must be batch or transaction, not {data.get('type')!r}")
        entries = data.get("entry") or []
        if not isinstance(entries, list):
            raise FeedError("422", "Bundle.entry is not a list")
        if len(entries) > max_entries:
            raise FeedError("413", f"Bundle has {len(entries)} entries; the limit is {max_entries}")
        for i, e in enumerate(entries):
            res = e.get("resource") if isinstance(e, dict) else None
            if not isinstance(res, dict):
                raise FeedError("422", f"Bundle.entry[{i}] has no resource")
            if res.get("resourceType") not in RESOURCE_TYPES:
                raise FeedError("422", f"Bundle.entry[{i}]: resource type {res.get('resourceType')!r} is not "
                                       f"accepted ({', '.join(RESOURCE_TYPES)})")
    elif rtype not in RESOURCE_TYPES:
        raise FeedError("422", f"resource type {rtype!r} is not accepted (Bundle, {', '.join(RESOURCE_TYPES)})")
    try:
        _model(rtype).model_validate(data)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError, or a model lookup failure
        raise FeedError("422", f"{rtype} does not validate as FHIR R4: {_short(exc)}") from None
    return data


def _short(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            return "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors()[:5])
    return str(exc)[:500]


def accept(payload: bytes | str, resource_type: str | None, buffer, max_bytes: int = MAX_BYTES,
           max_entries: int = MAX_ENTRIES, store_wait_s: float = 5.0, peer: str = "") -> tuple[int, dict]:
    """Validate, store durably, answer: ``(HTTP status, OperationOutcome)``; never raises."""
    raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
    try:
        data = validate(raw, resource_type, max_bytes, max_entries)
    except FeedError as exc:
        status = int(exc.code)
        with contextlib.suppress(Exception):  # refused all the same; the client keeps its copy
            buffer.dead_letter(raw[:max_bytes], "fhir-validate", exc.reason, source="fhir", wait_s=store_wait_s,
                               peer=peer)
        return status, _outcome("error", "too-costly" if status == 413 else "invalid" if status == 422
                                else "structure", exc.reason)
    try:
        entry = buffer.append({"raw": raw, "source": "fhir", "encoding": "utf-8",
                               "received_at": utcnow().isoformat(), "peer": peer,
                               "control_id": f"{data['resourceType']}/{data.get('id', '')}",
                               "type": data["resourceType"]}, wait_s=store_wait_s)
    except Exception as exc:  # noqa: BLE001 - nothing stored
        return 503, _outcome("error", "transient", f"durable store unavailable, retry later ({type(exc).__name__})")
    return 201, _outcome("information", "informational", "stored", id=entry.replace("-", "."))


# --- mapping ---------------------------------------------------------------------------------------------
def _ts(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _ref_id(ref: dict | None, kind: str) -> str | None:
    r = (ref or {}).get("reference") or ""
    if r.startswith(kind + "/"):
        return r.split("/", 1)[1] or None
    ident = (ref or {}).get("identifier") or {}
    return ident.get("value") or None


def _ident(res: dict) -> str | None:
    return res.get("id") or next((i.get("value") for i in res.get("identifier") or [] if i.get("value")), None)


def _coding(concept: dict | None) -> tuple[str | None, str | None]:
    concept = concept or {}
    c = next(iter(concept.get("coding") or []), {}) or {}
    return c.get("code"), concept.get("text") or c.get("display") or c.get("code")


_STATUS = {"planned": "admitted", "arrived": "admitted", "triaged": "admitted", "in-progress": "admitted",
           "onleave": "admitted", "finished": "discharged", "cancelled": "cancelled",
           "entered-in-error": "cancelled"}
_GENDER = {"male": "M", "female": "F", "other": "O", "unknown": "U"}
_TAG = re.compile(r"<[^>]+>")


def _doc(text: str, key: str, pid, eid, when: datetime, uri: str) -> ClinicalRecord:
    return ClinicalRecord.of(text, doc_id=hashlib.sha256(f"fhir\x1f{key}".encode()).hexdigest(), source_uri=uri,
                             patient_id=pid, encounter_id=eid, recorded_on=when.date())


def _resource(res: dict, received: datetime) -> tuple[list, list]:
    rtype, rid = res["resourceType"], _ident(res) or ""
    when = _ts((res.get("meta") or {}).get("lastUpdated")) or received
    v = f"{iso(when)}|{rtype}/{rid}"
    uri = f"fhir:{rtype}/{rid}"
    pid = _ref_id(res.get("subject") or res.get("patient"), "Patient")
    ctx = res.get("encounter") or res.get("context")
    if isinstance(ctx, dict) and isinstance(ctx.get("encounter"), list):  # DocumentReference.context
        ctx = next(iter(ctx["encounter"]), None)
    eid = _ref_id(ctx, "Encounter")
    ops, docs = [], []
    if rtype == "Patient":
        if not rid:
            raise FeedError("AE", "Patient has no id or identifier")
        row = {"pid": rid, "v": v}
        if res.get("gender") in _GENDER:
            row["sex"] = _GENDER[res["gender"]]
        if res.get("birthDate"):
            row["birth_date"] = str(res["birthDate"])[:10]
        ops.append(("patient", row))
    elif rtype == "Encounter":
        if not rid:
            raise FeedError("AE", "Encounter has no id or identifier")
        enc = {"eid": rid, "pid": pid, "v": v}
        status = _STATUS.get(res.get("status", ""))
        period = res.get("period") or {}
        if status:
            enc["status"] = status
        if status == "cancelled":
            enc["admitted_at"] = None
        elif period.get("start"):
            enc["admitted_at"] = iso(_ts(period["start"]))
        if period.get("end") and status != "cancelled":
            enc["discharged_at"] = iso(_ts(period["end"]))
        loc = next(iter(res.get("location") or []), {}) or {}
        ward = (loc.get("location") or {}).get("display")
        if ward:
            enc["ward"] = ward
        klass = res.get("class") or {}
        if isinstance(klass, dict) and klass.get("code"):
            enc["class"] = klass["code"]
        if pid:
            ops.append(("patient", {"pid": pid, "v": v}))
        ops.append(("encounter", enc))
    elif rtype == "Observation":
        code, name = _coding(res.get("code"))
        if res.get("valueString") and len(res["valueString"]) > 200:
            docs.append(_doc(res["valueString"], uri, pid, eid, when, uri))
        else:
            q = res.get("valueQuantity") or {}
            value = q.get("value", res.get("valueString"))
            rr = next(iter(res.get("referenceRange") or []), {}) or {}
            rng = rr.get("text") or (f"{(rr.get('low') or {}).get('value', '')}-{(rr.get('high') or {}).get('value', '')}"
                                     if rr.get("low") or rr.get("high") else None)
            interp = _coding(next(iter(res.get("interpretation") or []), None))[0]
            from graph.model import concept_key

            ops.append(("lab", {"result_id": uri, "pid": pid, "eid": eid, "code": code, "name": name or code,
                                "key": concept_key(name or code or rid), "value": None if value is None else str(value),
                                "value_num": float(value) if isinstance(value, (int, float)) else None,
                                "unit": q.get("unit") or q.get("code"), "ref_range": rng, "abnormal": interp,
                                "status": res.get("status"),
                                "observed_at": iso(_ts(res.get("effectiveDateTime")) or when), "order": None,
                                "v": v}))
    elif rtype == "DocumentReference":
        texts = []
        for c in res.get("content") or []:
            att = c.get("attachment") or {}
            if att.get("data") and (att.get("contentType") or "text/plain").startswith("text/"):
                texts.append(base64.b64decode(att["data"]).decode("utf-8"))
        if not texts:
            raise FeedError("AE", "DocumentReference has no inline text attachment (content.attachment.data)")
        docs.append(_doc("\n".join(texts), uri, pid, eid, when, uri))
    elif rtype == "Composition":
        parts = [res.get("title") or ""]
        for s in res.get("section") or []:
            div = (s.get("text") or {}).get("div") or ""
            parts.append(((s.get("title") or "") + "：" if s.get("title") else "") + _TAG.sub("", div).strip())
        text = "\n".join(p for p in parts if p.strip())
        if not text.strip():
            raise FeedError("AE", "Composition has no section text")
        docs.append(_doc(text, uri, pid, eid, when, uri))
    elif rtype in ("Condition", "MedicationRequest"):
        _, name = _coding(res.get("code") if rtype == "Condition" else res.get("medicationCodeableConcept"))
        if not name:
            raise FeedError("AE", f"{rtype} has no coded text")
        prefix = "诊断：" if rtype == "Condition" else "用药："
        docs.append(_doc(prefix + name + "。", uri, pid, eid, when, uri))
    elif rtype == "ChargeItem":
        code, name = _coding(res.get("code"))
        price = (res.get("priceOverride") or {}).get("value")
        if price is None:
            raise FeedError("AE", "ChargeItem has no priceOverride.value")
        qty = (res.get("quantity") or {}).get("value", 1)
        ops.append(("charge", {"charge_id": uri, "pid": pid, "eid": eid,
                               "posted_at": iso(_ts(res.get("enteredDate")) or when), "type": res.get("status"),
                               "code": code, "name": name, "quantity": float(qty), "amount": float(price),
                               "unit_price": float(price) / float(qty) if qty else None, "v": v}))
    return ops, docs


def parse_entry(raw: bytes, received_at: str = "") -> FeedMessage:
    """A stored FHIR payload (one resource or a Bundle) -> :class:`FeedMessage`; raises :class:`FeedError`."""
    data = validate(raw)
    received = _ts(received_at) or utcnow()
    resources = ([e["resource"] for e in data.get("entry") or []] if data["resourceType"] == "Bundle" else [data])
    ops, docs = [], []
    for res in resources:
        o, d = _resource(res, received)
        ops += o
        docs += d
    first = resources[0] if resources else data
    pid = next((r["pid"] for op, r in ops if op == "patient"), None)
    eid = next((r["eid"] for op, r in ops if op == "encounter"), None)
    return FeedMessage("fhir", data["resourceType"], f"{data['resourceType']}/{_ident(data) or ''}",
                       f"{iso(received)}|{first.get('resourceType')}/{_ident(first) or ''}", pid, eid, tuple(ops),
                       tuple(docs), iso(received))
