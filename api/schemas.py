"""Pydantic models at the API's boundary (requests and responses). Identifiers in paths and bodies are held
to tight patterns, so nothing odd reaches a query or a path (values go to Cypher as parameters anyway)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from core.records import Assertion, DocumentType
from graph.schema import CONCEPT_LABELS

PID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
CLAIM_ID_PATTERN = r"^[0-9a-f]{64}:[0-9]{1,4}$"
JOB_ID_PATTERN = r"^[0-9a-f]{32}$"
FIELD_PATH_PATTERN = (r"^(header\.[a-z_]{1,40}|payments\.[a-z_]{1,40}|total_figures|total_words|"
                      r"items\[[0-9]{1,4}\]\.(name|amount|spec|unit|quantity|unit_price|item_class|tax_rate|tax|match_code))$")

Pid = Annotated[str, StringConstraints(pattern=PID_PATTERN)]
ConceptType = Literal[tuple(CONCEPT_LABELS)]  # type: ignore[valid-type]
ConceptName = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
ReviewStatus = Literal["pending", "approved", "rejected"]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- claims --------------------------------------------------------------------------------------------------

class FieldOut(Model):
    value: str | None
    kind: str
    raw: str
    confidence: float
    box: list[list[float]] | None
    needs_review: bool
    note: str


class CatalogMatchOut(Model):
    code: str
    name: str
    category: str | None
    score: float
    method: str


class ItemOut(Model):
    line_no: int
    fields: dict[str, FieldOut]
    match: CatalogMatchOut | None


class FindingOut(Model):
    rule: str
    severity: str
    detail: str
    message: str = Field("", description="one sentence a clerk can act on (reconciliation findings)")
    evidence: dict = Field(default_factory=dict, description="the structured facts the finding rests on")


class ClaimSummary(Model):
    claim_id: str
    doc_id: str
    page: int
    doc_type: DocumentType
    hospital: str | None
    issue_date: date | None
    needs_review: bool
    status: ReviewStatus
    version: int
    source: str
    created_at: str


class ClaimOut(ClaimSummary):
    header: dict[str, FieldOut]
    items: list[ItemOut]
    total_figures: FieldOut | None
    total_words: FieldOut | None
    payments: dict[str, FieldOut]
    findings: list[FindingOut]
    etag: str


class ClaimPage(Model):
    items: list[ClaimSummary]
    next_cursor: str | None


class Change(Model):
    field: Annotated[str, StringConstraints(pattern=FIELD_PATH_PATTERN)] = Field(
        description="a field path: header.hospital, payments.fund, total_figures, items[3].amount, ...; "
                    "items[3].match_code picks one of the line's catalogue alternatives as its match")
    value: Annotated[str, StringConstraints(max_length=500)] | None = Field(description="the corrected value; "
                                                                               "null clears it")


class ClaimPatch(Model):
    changes: list[Change] = Field(min_length=1, max_length=200)
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]


class Decision(Model):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500, strip_whitespace=True)]


class HistoryEntry(Model):
    seq: int
    version: int
    at: str
    user: str
    role: str
    field: str
    old: str | None
    new: str | None
    reason: str


class UploadResult(Model):
    claims: list[ClaimOut]


# --- jobs ----------------------------------------------------------------------------------------------------

class DeadLetterOut(Model):
    input: str
    stage: str
    error: str
    reason: str
    message: str


class JobOut(Model):
    job_id: str
    state: Literal["queued", "running", "succeeded", "failed"]
    created_at: str
    started_at: str | None
    finished_at: str | None
    files: int
    done: int
    counts: dict[str, int]
    dead_letters: list[DeadLetterOut]
    claim_ids: list[str]
    error: str | None


# --- records and patients ------------------------------------------------------------------------------------

class RecordIn(Model):
    text: Annotated[str, StringConstraints(min_length=1, max_length=100_000)]
    patient_id: Pid
    encounter_id: Annotated[str, StringConstraints(pattern=PID_PATTERN)] | None = None
    recorded_on: date | None = None
    sex: Literal["F", "M", "X"] | None = Field(None, description="the patient's sex, for cohort aggregates")
    birth_year: int | None = Field(None, ge=1880, le=2200, description="for cohort age bands")


class EntityOut(Model):
    type: str
    text: str
    start: int
    end: int
    assertion: Assertion
    confidence: float


class RelationOut(Model):
    subject: str
    predicate: str
    object: str
    evidence: str


class RecordOut(Model):
    doc_id: str
    patient_id: str
    encounter_id: str | None
    entities: list[EntityOut]
    relations: list[RelationOut]


class EmrEntry(Model):
    name: str | None
    key: str | None
    assertion: str | None
    text: str | None
    evidence: str | None
    start: int | None
    end: int | None
    confidence: float | None
    doc_id: str | None
    encounter_id: str | None
    date: str | None


class EmrOut(Model):
    pid: str
    concepts: dict[str, list[EmrEntry]]


class TimelineEvent(Model):
    kind: Literal["document", "claim"]
    date: str | None
    encounter_id: str | None
    doc_id: str | None
    doc_kind: str | None
    mentions: int | None
    claim_id: str | None
    doc_type: str | None


class TimelineOut(Model):
    pid: str
    events: list[TimelineEvent]


class FactArgument(Model):
    label: str | None = Field(description="the concept's type (Disease, Drug, ...)")
    key: str | None = Field(description="the concept's key in the graph")
    name: str | None = Field(description="the concept's name")
    text: str | None = Field(description="the mention as written in this document")
    start: int | None
    end: int | None
    assertion: str | None = Field(description="the mention's assertion in this document: affirmed, negated, "
                                              "possible, historical, family, ...")


class PatientFact(Model):
    statement_id: str | None
    type: str = Field(description="the predicate, e.g. TREATED_WITH_DRUG")
    label: str | None = Field(description="the source's predicate label, e.g. 药物治疗")
    affirmed: bool = Field(description="both arguments affirmed: a fact about this patient; False only with "
                                       "include_non_affirmed (a negated, possible, historical or family argument)")
    subject: FactArgument
    object: FactArgument
    sentence: int | None = Field(description="the sentence's index in the document")
    evidence: str | None = Field(description="the sentence stating it")
    confidence: float | None
    model: str | None
    doc_id: str | None
    encounter_id: str | None
    date: str | None = Field(description="the document's date, else its encounter's (ISO)")
    knowledge_evidence: int | None = Field(
        description="knowledge, not this patient: how many document sentences over ALL documents and patients "
                    "affirm the concept-level relationship (None where none does)")


class FactsOut(Model):
    pid: str
    include_non_affirmed: bool
    facts: list[PatientFact]


# --- research ------------------------------------------------------------------------------------------------

class ConceptRef(Model):
    type: ConceptType
    name: ConceptName


class CohortIn(Model):
    include: list[ConceptRef] = Field(min_length=1, max_length=10)
    exclude: list[ConceptRef] = Field(default_factory=list, max_length=10)
    since: date | None = None
    until: date | None = None


class CountOut(Model):
    value: str = Field(description="the group: a sex, an age band, or 'unknown'")
    count: int | None = Field(description="null: fewer than k, suppressed")


class CoConceptOut(Model):
    type: str
    name: str
    patients: int


class CohortOut(Model):
    k: int
    count: int | None = Field(description="null: fewer than k patients, suppressed")
    suppressed: bool
    patients: list[str] = Field(description="pseudonymised ids (keyed HMAC); empty when suppressed")
    sex: list[CountOut]
    age_band: list[CountOut]
    co_occurring: list[CoConceptOut]


class NeighbourOut(Model):
    direction: Literal["out", "in"]
    predicate: str
    label: str | None
    type: str | None
    name: str | None
    evidence: int


class ConceptOut(Model):
    type: str
    name: str
    found: bool
    k: int
    documents: int | None = Field(description="documents with an affirmed mention; null below k")
    relations: list[NeighbourOut] = Field(description="relations with evidence of at least k")
    suppressed_relations: int


# --- users and operations ------------------------------------------------------------------------------------

class UserIn(Model):
    name: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]
    role: Literal["clerk", "clinician", "researcher", "integration", "admin"]


class UserOut(Model):
    name: str
    role: str
    key_id: str
    created_at: str
    revoked_at: str | None


class NewKeyOut(Model):
    name: str
    role: str
    api_key: str = Field(description="shown once; only a salted hash is stored")


class Health(Model):
    status: Literal["ok"]


class Readiness(Model):
    ready: bool = Field(description="every dependency below is up")
    graph: bool = Field(description="the graph server answers")
    models: dict[str, bool] = Field(description="each model the server was asked to load, loaded or not")
    feeds: bool | None = Field(None, description="the feed buffer (Valkey/Redis) answers; null: none configured")
    down: list[str] = Field(default_factory=list, description="what is down: graph, feeds, models:<name>")
