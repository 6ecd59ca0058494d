"""HL7 v2 messages -> medkg feed messages (pure functions: bytes in, records out).

:func:`parse` decodes the raw bytes with the configured encoding (UTF-8 or GB18030; the ``hl7`` package
would default to ASCII), accepts ``\\r``, ``\\n`` or ``\\r\\n`` segment separators (``hl7.parse`` reads a
``\\n``-separated message as one segment), parses with ``hl7`` 0.4.5 and maps what medkg uses:

============  =====================================================================================
ADT A01/A04   patient (PID: id, sex, birth date) + encounter admitted/registered (PV1: visit number
              PV1-19, class PV1-2, ward PV1-3, admit time PV1-44 or EVN-2 or MSH-7)
ADT A02       transfer: the encounter's ward, and a ``Transfer`` (from PV1-6 to PV1-3)
ADT A03       discharge (PV1-45 or EVN-2 or MSH-7)
ADT A08       patient and encounter update (no status change)
ADT A11       cancel admit: the admission undone (status ``cancelled``, no admit time)
ADT A13       cancel discharge: the discharge undone (status ``admitted``, no discharge time)
ORU^R01       lab results per OBX (value, numeric value, unit, reference range, abnormal flag, status);
              text results (OBX-2 TX/FT) -> one clinical document per order for NER
MDM^T02       the document's text (OBX TX/FT/ST lines) -> a clinical document for NER
DFT^P03       charges per encounter (FT1: transaction id, date, type, code, description, quantity,
              amount, unit price)
============  =====================================================================================

Everything that is not one of these, or lacks what it needs (no MSH, no control id, no patient id...),
raises :class:`FeedError` with the acknowledgement code to send (``AR``: rejected, the message as a
whole cannot be taken; ``AE``: it was read but its content is in error) and a reason people can read.

Ordering: every update carries ``version`` = MSH-7 as a fixed-width UTC timestamp + ``|`` + the control
id (MSH-10). The graph applies a field only when its stored version is not newer (graph.feed_rows), so an
older message arriving late never overwrites a newer one, and a duplicate re-applies the same values.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone

from core.records import ClinicalRecord

SUPPORTED = {
    "ADT": {"A01", "A02", "A03", "A04", "A08", "A11", "A13"},
    "ORU": {"R01"},
    "MDM": {"T02"},
    "DFT": {"P03"},
}
TEXT_TYPES = {"TX", "FT"}
ENCODINGS = ("utf-8", "gb18030")


class FeedError(ValueError):
    """A message that cannot be accepted: ``code`` is the acknowledgement code (AR or AE)."""

    def __init__(self, code: str, reason: str, control_id: str = "", stage: str = "parse"):
        super().__init__(reason)
        self.code, self.reason, self.control_id, self.stage = code, reason, control_id, stage


@dataclass(frozen=True)
class FeedMessage:
    """One parsed message: what the graph gets (``ops``: (operation, row) pairs, graph.feed_rows) and the
    clinical texts for NER (``documents``)."""

    source: str  # hl7v2 | fhir
    type: str  # ADT^A01, ORU^R01, ..., or a FHIR resource type
    control_id: str
    version: str
    patient_id: str | None = None
    encounter_id: str | None = None
    ops: tuple[tuple[str, dict], ...] = ()
    documents: tuple[ClinicalRecord, ...] = ()
    sent_at: str = ""
    ack_mode: str = "original"  # original (AA/AE/AR) | enhanced (CA/CE/CR): MSH-15 present
    fields: dict = field(default_factory=dict)  # MSH fields an ACK echoes


# --- decoding and the header ------------------------------------------------------------------------------
_SEP = re.compile(r"\r\n|\n|\r")


def decode(raw: bytes, encoding: str = "utf-8") -> str:
    """Bytes -> text with segments separated by ``\\r``; strict: bytes not valid in ``encoding`` raise."""
    if encoding.lower().replace("_", "-") not in ENCODINGS:
        raise FeedError("AR", f"encoding {encoding!r} is not supported (utf-8, gb18030)")
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError) as exc:
        raise FeedError("AR", f"message is not valid {encoding}: {exc.reason} at byte {exc.start}") from None
    text = text.removeprefix("\ufeff")
    if "\x00" in text:
        raise FeedError("AR", "message contains NUL characters")
    segments = [s for s in _SEP.split(text) if s.strip()]
    return "\r".join(segments)


@dataclass(frozen=True)
class Header:
    field_sep: str
    components: str
    sending_app: str
    sending_facility: str
    receiving_app: str
    receiving_facility: str
    sent: str  # MSH-7 as sent
    type: str  # MSG^EVT
    control_id: str
    processing_id: str
    version_id: str
    accept_ack: str  # MSH-15


_SEG_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


def header(text: str) -> Header:
    """MSH of a decoded message, read without the ``hl7`` package (so an ACK can name the control id even
    when the body is broken)."""
    if not text.startswith("MSH"):
        raise FeedError("AR", "message does not begin with an MSH segment")
    msh = text.split("\r", 1)[0]
    if len(msh) < 8:
        raise FeedError("AR", "MSH segment is too short")
    fs = msh[3]
    if fs.isalnum() or fs in " \r\n":
        raise FeedError("AR", f"MSH-1 field separator {fs!r} is not valid")
    f = msh.split(fs)
    # f[0] = "MSH", f[1] = encoding characters = MSH-2; MSH-n = f[n-1]
    enc = f[1] if len(f) > 1 else ""
    if len(enc) < 2 or len(set(enc[:4])) != len(enc[:4]) or fs in enc or any(c.isalnum() for c in enc[:4]):
        raise FeedError("AR", f"MSH-2 encoding characters {enc!r} are not valid")
    comp = enc[0]

    def get(n: int) -> str:
        return f[n - 1] if len(f) > n - 1 else ""

    control = get(10).strip()
    mtype = get(9).split(comp)
    h = Header(fs, comp, get(3), get(4), get(5), get(6), get(7).strip(),
               "^".join(p.strip() for p in mtype[:2]) if len(mtype) >= 2 else get(9).strip(), control,
               get(11), get(12), get(15))
    if not control:
        raise FeedError("AR", "MSH-10 message control id is empty")
    if len(control) > 199:
        raise FeedError("AR", "MSH-10 message control id is longer than 199 characters")
    if not h.type:
        raise FeedError("AR", "MSH-9 message type is empty", control)
    return h


_TS = re.compile(r"^(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?$")


def parse_ts(value: str, default_tz=UTC) -> datetime | None:
    """An HL7 DTM (``YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]``) -> an aware datetime, None when empty.
    Without an offset the hospital's local time is meant; medkg takes ``default_tz`` (UTC)."""
    value = (value or "").strip()
    if not value:
        return None
    m = _TS.match(value)
    if not m:
        raise FeedError("AE", f"timestamp {value!r} is not an HL7 DTM")
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        tzinfo = default_tz
        if tz:
            sign = 1 if tz[0] == "+" else -1
            tzinfo = timezone(sign * timedelta(hours=int(tz[1:3]), minutes=int(tz[3:5])))
        dt = datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0),
                      int((frac or "0").ljust(6, "0")), tzinfo=tzinfo)
    except ValueError as exc:
        raise FeedError("AE", f"timestamp {value!r}: {exc}") from None
    return dt.astimezone(UTC)


def iso(dt: datetime | None) -> str | None:
    """Fixed width, so versions compare as strings: ``2026-01-02T03:04:05.000000Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if dt else None


def version_of(sent: datetime, control_id: str) -> str:
    return f"{iso(sent)}|{control_id}"


# --- the body ---------------------------------------------------------------------------------------------
class _Msg:
    """Field access on an ``hl7.Message`` that answers "" for what is absent."""

    def __init__(self, msg):
        self.msg = msg

    def segments(self, name: str) -> list:
        return [s for s in self.msg if str(s[0]) == name]

    def first(self, name: str):
        segs = self.segments(name)
        return segs[0] if segs else None


def _get(seg, f: int, comp: int = 1, rep: int = 1, sub: int = 1) -> str:
    """Segment field ``f`` (1-based, MSH counting as HL7 does), component ``comp``; "" if absent."""
    if seg is None:
        return ""
    try:
        value = seg[f]
    except (IndexError, KeyError):
        return ""
    try:
        if isinstance(value, str):
            return value.strip() if comp == 1 and rep == 1 else ""
        # value: Field (list of Repetitions) or a plain string
        r = value[rep - 1] if len(value) >= rep else None
        if r is None:
            return ""
        if isinstance(r, str):
            return r.strip() if comp == 1 else ""
        c = r[comp - 1] if len(r) >= comp else None
        if c is None:
            return ""
        if isinstance(c, str):
            return c.strip() if sub == 1 else ""
        s = c[sub - 1] if len(c) >= sub else ""
        return str(s).strip()
    except (IndexError, TypeError):
        return ""


def _whole(seg, f: int) -> str:
    if seg is None:
        return ""
    try:
        return str(seg[f])
    except (IndexError, KeyError):
        return ""


_ESC = None


def _unescape(text: str, h: Header) -> str:
    """HL7 escapes in text values: ``\\.br\\`` line breaks, ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\``."""
    if "\\" not in text:
        return text
    return (text.replace("\\.br\\", "\n").replace("\\F\\", h.field_sep).replace("\\S\\", h.components)
            .replace("\\T\\", "&").replace("\\R\\", "~").replace("\\E\\", "\\"))


_SEX = {"M": "M", "F": "F", "O": "O", "U": "U", "A": "O", "N": "U", "男": "M", "女": "F"}


def _date(value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    dt = parse_ts(value)
    return dt.date().isoformat() if dt else None


def _decimal(value: str) -> float | None:
    try:
        v = float(value.replace(",", ""))
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def parse(raw: bytes, encoding: str = "utf-8", source_uri: str = "") -> FeedMessage:
    """Raw HL7 v2 bytes -> :class:`FeedMessage`; raises :class:`FeedError` (never anything else)."""
    try:
        return _parse(raw, encoding, source_uri)
    except FeedError:
        raise
    except RecursionError:
        raise FeedError("AE", "message nesting is too deep") from None
    except Exception as exc:  # noqa: BLE001 - a parser fault on odd input is that input's error, not ours
        raise FeedError("AE", f"message cannot be parsed: {type(exc).__name__}: {exc}") from None


def _parse(raw: bytes, encoding: str, source_uri: str) -> FeedMessage:
    import hl7

    text = decode(raw, encoding)
    h = header(text)
    for seg in text.split("\r"):
        name = seg[:3]
        if not _SEG_NAME.match(name) or (len(seg) > 3 and seg[3] != h.field_sep):
            raise FeedError("AE", f"segment {seg[:20]!r} has no valid segment name", h.control_id)
    msg_type, _, event = h.type.partition("^")
    if msg_type == "ACK":
        raise FeedError("AR", "an ACK is not a message to store", h.control_id)
    if msg_type not in SUPPORTED or event not in SUPPORTED[msg_type]:
        raise FeedError("AR", f"message type {h.type!r} is not supported "
                              f"({', '.join(f'{t}^{e}' for t in SUPPORTED for e in sorted(SUPPORTED[t]))})",
                        h.control_id)
    sent = parse_ts(h.sent)
    if sent is None:
        raise FeedError("AE", "MSH-7 date/time of message is empty", h.control_id)
    try:
        msg = _Msg(hl7.parse(text, encoding=encoding))
    except Exception as exc:  # noqa: BLE001
        raise FeedError("AE", f"message cannot be parsed: {exc}", h.control_id) from None
    v = version_of(sent, h.control_id)
    ctx = _Ctx(h, msg, v, sent, source_uri or f"hl7:{h.sending_facility}:{h.control_id}")
    try:
        ops, docs = {"ADT": _adt, "ORU": _oru, "MDM": _mdm, "DFT": _dft}[msg_type](ctx, event)
    except FeedError as exc:
        exc.control_id = exc.control_id or h.control_id
        raise
    return FeedMessage("hl7v2", h.type, h.control_id, v, ctx.pid, ctx.eid, tuple(ops), tuple(docs), iso(sent),
                       "enhanced" if h.accept_ack.strip() else "original")


@dataclass
class _Ctx:
    h: Header
    msg: _Msg
    version: str
    sent: datetime
    source_uri: str
    pid: str | None = None
    eid: str | None = None

    def error(self, reason: str) -> FeedError:
        return FeedError("AE", reason, self.h.control_id)


def _patient(ctx: _Ctx, required: bool = True) -> list[tuple[str, dict]]:
    pid_seg = ctx.msg.first("PID")
    if pid_seg is None:
        if required:
            raise ctx.error("PID segment is missing")
        return []
    pid = _get(pid_seg, 3) or _get(pid_seg, 2)
    if not pid:
        raise ctx.error("PID-3 patient identifier is empty")
    if len(pid) > 100:
        raise ctx.error("PID-3 patient identifier is longer than 100 characters")
    ctx.pid = pid
    row = {"pid": pid, "v": ctx.version}
    sex = _SEX.get(_get(pid_seg, 8).upper())
    birth = _date(_get(pid_seg, 7))
    if sex:
        row["sex"] = sex
    if birth:
        row["birth_date"] = birth
    return [("patient", row)]


def _visit(ctx: _Ctx, required: bool) -> object:
    pv1 = ctx.msg.first("PV1")
    eid = _get(pv1, 19)
    if not eid:
        if required:
            raise ctx.error("PV1-19 visit number is empty" if pv1 is not None else "PV1 segment is missing")
        return pv1
    if len(eid) > 100:
        raise ctx.error("PV1-19 visit number is longer than 100 characters")
    ctx.eid = eid
    return pv1


def _event_time(ctx: _Ctx, pv1_field: int | None = None) -> str:
    pv1 = ctx.msg.first("PV1")
    evn = ctx.msg.first("EVN")
    for value in ((_get(pv1, pv1_field) if pv1_field else ""), _get(evn, 6), _get(evn, 2)):
        if value:
            return iso(parse_ts(value))
    return iso(ctx.sent)


def _ward(pv1) -> str | None:
    parts = [_get(pv1, 3, c) for c in (1, 2, 3)]
    return "-".join(p for p in parts if p) or None


def _adt(ctx: _Ctx, event: str):
    ops = _patient(ctx)
    pv1 = _visit(ctx, required=event != "A08")
    if ctx.eid is None:  # A08 without a visit: a patient update only
        return ops, []
    enc = {"eid": ctx.eid, "pid": ctx.pid, "v": ctx.version}
    ward, klass = _ward(pv1), _get(pv1, 2) or None
    if event in ("A01", "A04"):
        enc.update(status="admitted" if event == "A01" else "registered", admitted_at=_event_time(ctx, 44))
    elif event == "A03":
        enc.update(status="discharged", discharged_at=_event_time(ctx, 45))
    elif event == "A11":
        enc.update(status="cancelled", admitted_at=None)
    elif event == "A13":
        enc.update(status="admitted", discharged_at=None)
    if event in ("A01", "A02", "A04", "A08") and ward:
        enc["ward"] = ward
    if event in ("A01", "A04", "A08") and klass:
        enc["class"] = klass
    ops.append(("encounter", enc))
    if event == "A02":
        prior = "-".join(p for p in (_get(pv1, 6, c) for c in (1, 2, 3)) if p) or None
        ops.append(("transfer", {"transfer_id": f"{ctx.h.sending_facility}:{ctx.h.control_id}", "eid": ctx.eid,
                                 "from_ward": prior, "to_ward": ward, "at": _event_time(ctx), "v": ctx.version}))
    return ops, []


def _doc_id(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()


def _oru(ctx: _Ctx, event: str):
    ops = _patient(ctx)
    _visit(ctx, required=False)
    if ops:
        ops[0][1].pop("sex", None), ops[0][1].pop("birth_date", None)  # demographics come from ADT
    results, docs = [], []
    obr, texts, order = None, [], ""

    def flush():
        if texts:
            text = "\n".join(t for t in texts if t)
            if text.strip():
                docs.append(ClinicalRecord(doc_id=_doc_id("hl7-oru", ctx.h.sending_facility, order or ctx.h.control_id),
                                           text=text, source_uri=ctx.source_uri, patient_id=ctx.pid,
                                           encounter_id=ctx.eid, recorded_on=ctx.sent.date()))
        texts.clear()

    n_obx = 0
    for seg in ctx.msg.msg:
        name = str(seg[0])
        if name == "OBR":
            flush()
            obr = seg
            order = _get(obr, 3) or _get(obr, 2) or f"{ctx.h.control_id}:{_get(obr, 1) or '1'}"
        elif name == "OBX":
            n_obx += 1
            vtype = _get(seg, 2).upper()
            value = _unescape(_whole(seg, 5), ctx.h)
            if vtype in TEXT_TYPES:
                texts.append(value.replace("~", "\n"))
                continue
            code, name_ = _get(seg, 3, 1), _get(seg, 3, 2)
            if not (code or name_):
                raise ctx.error(f"OBX {n_obx}: OBX-3 observation identifier is empty")
            value = _get(seg, 5)
            row = {"result_id": f"{ctx.h.sending_facility}:{order or ctx.h.control_id}:{code or name_}:{_get(seg, 4)}",
                   "pid": ctx.pid, "eid": ctx.eid, "code": code or None, "name": name_ or code,
                   "key": _concept_key(name_ or code), "value": value or None,
                   "value_num": _decimal(value) if vtype in ("NM", "SN", "") else None,
                   "unit": _get(seg, 6) or None, "ref_range": _get(seg, 7) or None,
                   "abnormal": _get(seg, 8) or None, "status": _get(seg, 11) or None,
                   "observed_at": iso(parse_ts(_get(seg, 14))) if _get(seg, 14) else
                   (iso(parse_ts(_get(obr, 7))) if _get(obr, 7) else iso(ctx.sent)),
                   "order": order or None, "v": ctx.version}
            results.append(("lab", row))
    flush()
    if not results and not docs:
        raise ctx.error("ORU^R01 carries no OBX result")
    return ops + results, docs


def _mdm(ctx: _Ctx, event: str):
    ops = _patient(ctx)
    _visit(ctx, required=False)
    if ops:
        ops[0][1].pop("sex", None), ops[0][1].pop("birth_date", None)
    txa = ctx.msg.first("TXA")
    if txa is None:
        raise ctx.error("TXA segment is missing")
    lines = [_unescape(_whole(s, 5), ctx.h).replace("~", "\n") for s in ctx.msg.segments("OBX")
             if _get(s, 2).upper() in TEXT_TYPES | {"ST"}]
    text = "\n".join(lines).strip()
    if not text:
        raise ctx.error("MDM^T02 carries no document text (OBX TX/FT/ST)")
    unique = _get(txa, 12)
    doc_id = _doc_id("hl7-mdm", ctx.h.sending_facility, unique) if unique else None
    recorded = _get(txa, 4) or _get(txa, 6)
    rec = ClinicalRecord.of(text, doc_id=doc_id, source_uri=ctx.source_uri, patient_id=ctx.pid,
                            encounter_id=ctx.eid,
                            recorded_on=(parse_ts(recorded) or ctx.sent).date() if recorded else ctx.sent.date())
    return ops, [rec]


def _dft(ctx: _Ctx, event: str):
    ops = _patient(ctx)
    pv1 = _visit(ctx, required=False)
    del pv1
    if ops:
        ops[0][1].pop("sex", None), ops[0][1].pop("birth_date", None)
    charges = []
    for i, ft1 in enumerate(ctx.msg.segments("FT1"), 1):
        amount = _decimal(_get(ft1, 11))
        if amount is None:
            raise ctx.error(f"FT1 {i}: FT1-11 extended amount {_get(ft1, 11)!r} is not a number")
        txn = _get(ft1, 2) or f"{ctx.h.control_id}:{_get(ft1, 1) or i}"
        charges.append(("charge", {
            "charge_id": f"{ctx.h.sending_facility}:{txn}", "pid": ctx.pid, "eid": ctx.eid,
            "posted_at": iso(parse_ts(_get(ft1, 4))) if _get(ft1, 4) else iso(ctx.sent),
            "type": _get(ft1, 6) or None, "code": _get(ft1, 7, 1) or None,
            "name": _get(ft1, 7, 2) or _get(ft1, 8) or None, "quantity": _decimal(_get(ft1, 10)) or 1.0,
            "amount": amount, "unit_price": _decimal(_get(ft1, 12)), "v": ctx.version}))
    if not charges:
        raise ctx.error("DFT^P03 carries no FT1 charge")
    return ops + charges, []


def _concept_key(name: str) -> str:
    from graph.model import concept_key

    return concept_key(name)


# --- acknowledgements -------------------------------------------------------------------------------------
def ack(text_or_header: Header | None, code: str, reason: str = "", control_id: str = "",
        now: datetime | None = None, ack_id: str = "") -> str:
    """An ACK message (segments separated by ``\\r``) for the message ``header`` (None when the header could
    not be read: the ACK then names no control id). ``code``: AA/AE/AR or CA/CE/CR."""
    now = now or datetime.now(UTC)
    h = text_or_header
    fs, enc = (h.field_sep, "^~\\&") if h else ("|", "^~\\&")
    ctrl = control_id or (h.control_id if h else "")
    ts = now.strftime("%Y%m%d%H%M%S")
    ack_id = ack_id or f"ACK{now.strftime('%Y%m%d%H%M%S%f')}"
    event = h.type.partition("^")[2] if h else ""

    def clean(s: str) -> str:  # nothing the reader could take for a separator
        return re.sub(r"[\r\n|^~\\&\x0b\x1c]", " ", s or "")[:200]

    msh = fs.join(["MSH", enc, clean(h.receiving_app if h else "MEDKG"), clean(h.receiving_facility if h else ""),
                   clean(h.sending_app if h else ""), clean(h.sending_facility if h else ""), ts, "",
                   f"ACK^{clean(event)}^ACK" if event else "ACK", ack_id, clean(h.processing_id if h else "P") or "P",
                   clean(h.version_id if h else "2.5") or "2.5"])
    msa = fs.join(["MSA", code, clean(ctrl), clean(reason)])
    segs = [msh, msa]
    if code not in ("AA", "CA"):
        segs.append(fs.join(["ERR", "", "", "", "E", "", "", "", clean(reason)]))  # ERR-4 severity, ERR-8 user message
    return "\r".join(segs)


def ack_code(ok: bool, reject: bool, enhanced: bool) -> str:
    if enhanced:
        return "CA" if ok else ("CR" if reject else "CE")
    return "AA" if ok else ("AR" if reject else "AE")
