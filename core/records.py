"""Typed records shared by every stage: plain data in, plain data out.

Every record is a frozen pydantic model so it validates at the boundary and serialises to JSON
without glue. Coordinates are pixels of the page image the record came from (origin top-left).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Point = tuple[float, float]
Quad = tuple[Point, Point, Point, Point]  # clockwise from top-left


def utcnow() -> datetime:
    return datetime.now(UTC)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Provenance(Record):
    """Which model (and version) produced a record, and when."""

    model: str
    version: str = ""
    precision: str = ""
    at: datetime = Field(default_factory=utcnow)


class DocumentKind(str, Enum):
    image = "image"
    pdf = "pdf"
    text = "text"
    hl7 = "hl7"
    fhir = "fhir"


class Document(Record):
    """One input file or message. ``doc_id`` is the sha256 of its bytes, so re-ingest is idempotent."""

    doc_id: str
    kind: DocumentKind
    source_uri: str
    media_type: str = ""
    size_bytes: int = 0
    patient_id: str | None = None
    encounter_id: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes, kind: DocumentKind, source_uri: str | Path, **kw) -> Document:
        return cls(doc_id=sha256_bytes(data), kind=kind, source_uri=str(source_uri), size_bytes=len(data), **kw)


class TextLine(Record):
    """A line of text on a page: its quadrilateral, its text and how sure the recogniser was; for characters it
    was unsure of, what it nearly read instead (index in ``text``, character, probability)."""

    box: Quad
    text: str
    confidence: float = Field(ge=0.0, le=1.0)
    alternatives: tuple[tuple[int, str, float], ...] = ()

    @field_validator("box", mode="before")
    @classmethod
    def _round_box(cls, v):
        return tuple((round(float(x), 1), round(float(y), 1)) for x, y in v)

    @property
    def left(self) -> float:
        return min(p[0] for p in self.box)

    @property
    def top(self) -> float:
        return min(p[1] for p in self.box)

    @property
    def right(self) -> float:
        return max(p[0] for p in self.box)

    @property
    def bottom(self) -> float:
        return max(p[1] for p in self.box)


class TextSource(str, Enum):
    ocr = "ocr"
    pdf_text = "pdf-text"  # the PDF's own text layer, no recognition needed


class SealText(Record):
    """The ring of a red seal (印章) on a page, unrolled and read (``ocr.seals``): the seal's box, and its
    readings, as scanned and with only the red ink kept, each with the recogniser's confidence."""

    box: Quad
    readings: tuple[tuple[str, float], ...] = ()


class Page(Record):
    """One page of a document after OCR: lines in reading order, in the upright page's pixels; the rings of
    its red seals apart (they are no line of the page's text)."""

    doc_id: str
    index: int = Field(ge=0)
    width: int
    height: int
    rotation: int = Field(0, description="clockwise degrees applied to make the page upright")
    source: TextSource = TextSource.ocr
    lines: tuple[TextLine, ...] = ()
    seals: tuple[SealText, ...] = ()
    provenance: Provenance | None = None

    @property
    def text(self) -> str:
        return "\n".join(line.text for line in self.lines)


class Span(Record):
    """Character offsets into a document's text, end exclusive."""

    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


class EntityType(str, Enum):
    """The graph's one entity schema; every dataset's labels map onto it (ner.schema)."""

    disease = "Disease"
    symptom = "Symptom"
    drug = "Drug"
    procedure = "Procedure"
    exam = "Exam"
    lab_test = "LabTest"
    body_part = "BodyPart"
    department = "Department"
    microbe = "Microbe"
    equipment = "Equipment"
    item = "Item"
    factor = "Factor"  # risk, social and epidemiological factors, prognoses, stages (CMeIE relation objects)


class Assertion(str, Enum):
    """What the text says about an entity (NegEx / ConText classes)."""

    affirmed = "affirmed"
    negated = "negated"
    possible = "possible"
    historical = "historical"
    family = "family"


class Entity(Record):
    """A typed mention in a text: ``span`` offsets index the original text, end exclusive."""

    span: Span
    type: EntityType
    assertion: Assertion = Assertion.affirmed
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    model: str = ""


class Relation(Record):
    """A typed triple with its evidence: ``predicate`` is the English type, ``label`` the source's own."""

    subject: Entity
    predicate: str
    label: str = ""
    object: Entity | Span
    evidence: Span
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    model: str = ""


class ClinicalRecord(Record):
    """A clinical text to post-structure; ``doc_id`` is the sha256 of its UTF-8 text unless given."""

    doc_id: str
    text: str
    source_uri: str = ""
    patient_id: str | None = None
    encounter_id: str | None = None
    recorded_on: date | None = None

    @classmethod
    def of(cls, text: str, **kw) -> ClinicalRecord:
        return cls(doc_id=kw.pop("doc_id", None) or sha256_bytes(text.encode("utf-8")), text=text, **kw)


class Finding(Record):
    """The result of a check or reconciliation rule. ``message`` is one sentence a clerk can act on (Chinese
    for reconciliation findings); ``evidence`` the structured facts it rests on (claim fields, charge
    records, graph facts), JSON-ready. Both are optional: checks give only ``detail``."""

    rule: str
    severity: str
    detail: str
    message: str = ""
    evidence: dict = Field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Bills into claims. A bill is read into a ``Claim`` of ``Field``s; checks and catalogue matching
# (claims/) add findings, repairs and matches without losing what was printed (``raw``).


class FieldKind(str, Enum):
    """What a field's value means; it fixes the value's Python type, so JSON round-trips keep it."""

    text = "text"
    amount = "amount"  # money, Decimal
    number = "number"  # quantity, unit price: Decimal
    date = "date"


def _coerce_value(kind: FieldKind, value):
    if value is None:
        return None
    if kind in (FieldKind.amount, FieldKind.number):
        return value if isinstance(value, Decimal) else Decimal(str(value))
    if kind is FieldKind.date:
        return value if isinstance(value, date) else date.fromisoformat(str(value))
    return str(value)


class BillField(Record):
    """One printed field of a bill: the normalised value, what was printed, where, and how sure we are.

    ``value`` is a ``Decimal`` for amounts and numbers, a ``date`` for dates, text otherwise (``kind``
    says which, inferred from the value when not given); ``None`` when the text could not be read as
    its kind. ``needs_review`` is set by the structurer (low confidence) and by the checks (a failing
    check marks every field it involves). ``note`` is the field's provenance beyond the OCR model,
    e.g. ``"repaired: 1 digit, unique candidate satisfying all checks"``.
    """

    name: str
    value: str | Decimal | date | None = None
    kind: FieldKind = FieldKind.text
    raw: str = ""
    confidence: float = Field(1.0, ge=0.0, le=1.0)
    box: Quad | None = None
    needs_review: bool = False
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _typed_value(cls, data):
        if isinstance(data, dict):
            data = dict(data)
            kind = data.get("kind")
            if kind is None:
                v = data.get("value")
                kind = (FieldKind.amount if isinstance(v, Decimal) else
                        FieldKind.date if isinstance(v, date) else FieldKind.text)
            kind = FieldKind(kind)
            data["kind"] = kind
            data["value"] = _coerce_value(kind, data.get("value"))
        return data


class DocumentType(str, Enum):
    inpatient_e_receipt = "inpatient_e_receipt"  # 医疗住院收费票据(电子)
    outpatient_e_receipt = "outpatient_e_receipt"  # 医疗门诊收费票据(电子)
    paper_receipt = "paper_receipt"  # printed on pre-printed paper, often dot-matrix
    itemised_list = "itemised_list"  # 费用清单
    vat_invoice = "vat_invoice"  # 增值税(电子)普通发票
    other_invoice = "other_invoice"  # another invoice (发票)
    not_a_bill = "not_a_bill"


class PaymentKey(str, Enum):
    """Keys of ``Claim.payments``: the insurance split printed in a receipt's 其他信息 block."""

    fund = "fund"  # 医保统筹基金支付
    self_pay = "self_pay"  # 个人自付
    self_expense = "self_expense"  # 个人自费 / 分类自负
    account = "account"  # 个人账户支付
    cash = "cash"  # 个人现金支付
    critical_illness = "critical_illness"  # 大病保险
    other_fund = "other_fund"  # 其他支付 (医疗救助, 公务员补助 …)
    prepaid = "prepaid"  # 预缴金额
    top_up = "top_up"  # 补缴金额
    refund = "refund"  # 退费金额


class HeaderKey(str, Enum):
    """Usual keys of ``Claim.header``; a structurer may add others (they are plain strings)."""

    bill_code = "bill_code"  # 票据代码
    bill_no = "bill_no"  # 票据号码
    check_code = "check_code"  # 校验码
    issue_date = "issue_date"  # 开票日期
    payer = "payer"  # 交款人
    hospital = "hospital"  # 收款单位
    hospital_code = "hospital_code"  # from the bureau's hospital register (claims.hospitals)
    hospital_level = "hospital_level"  # 1, 2, 3: from the register
    patient_name = "patient_name"
    sex = "sex"
    age = "age"
    inpatient_no = "inpatient_no"  # 住院号
    record_no = "record_no"  # 病历号
    admitted = "admitted"
    discharged = "discharged"
    insurance_type = "insurance_type"  # 医保类型
    amount_excl_tax = "amount_excl_tax"  # VAT invoice 合计金额
    tax = "tax"  # VAT invoice 合计税额
    buyer = "buyer"  # VAT invoice 购买方 名称
    buyer_tax_id = "buyer_tax_id"  # 购买方 纳税人识别号
    seller = "seller"  # 销售方 名称
    seller_tax_id = "seller_tax_id"  # 销售方 纳税人识别号


class CatalogCandidate(Record):
    code: str
    name: str
    category: str | None = None
    score: float = Field(ge=0.0, le=100.0)


class CatalogMatch(Record):
    """The catalogue entry a line item was matched to, how well, how, and the runners-up."""

    code: str
    name: str
    category: str | None = None
    score: float = Field(ge=0.0, le=100.0)
    method: str  # "exact" (normalised names equal) or "fuzzy"
    alternatives: tuple[CatalogCandidate, ...] = ()


class LineItem(Record):
    """One row of an item grid. Only name and amount are always printed."""

    line_no: int = Field(ge=0)
    name: BillField
    amount: BillField
    spec: BillField | None = None  # 规格
    unit: BillField | None = None  # 单位
    quantity: BillField | None = None  # 数量
    unit_price: BillField | None = None  # 单价
    item_class: BillField | None = None  # 甲 / 乙 / 丙
    tax_rate: BillField | None = None  # VAT invoices: 税率 as a fraction (13% → 0.13; 免税 → 0)
    tax: BillField | None = None  # VAT invoices: 税额
    match: CatalogMatch | None = None


class Claim(Record):
    """One page of a bill, structured: header fields, line items, totals, the payment split, findings.

    ``header`` keys are ``HeaderKey`` values (and others), ``payments`` keys ``PaymentKey`` values.
    """

    doc_id: str
    page: int = Field(0, ge=0)
    doc_type: DocumentType
    header: dict[str, BillField] = Field(default_factory=dict)
    items: tuple[LineItem, ...] = ()
    total_figures: BillField | None = None  # 金额合计(小写)
    total_words: BillField | None = None  # 金额合计(大写)
    payments: dict[str, BillField] = Field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    provenance: Provenance | None = None
