"""`ingest bills`: bill files → OCR → one checked Claim per bill (→ hospital register, catalogue match:
``claims.bureau``) → the graph. A bill is a page, or an itemised list running over several pages of one file
(``claims.document``).

The unit of work is the file: its pages are OCR'd together (recognition batches across pages) and its claims
are written together, so a document is either fully in the graph or dead-lettered, never half of it.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.pvalue import TaggedOutput

from claims.bureau import load_catalogue, load_register, with_bureau_data
from pipelines.graphio import GraphTarget
from pipelines.sources import read_bytes
from pipelines.transforms import (
    DEAD,
    NO_PROGRESS,
    GraphDoc,
    IngestOutputs,
    Progress,
    WriteToGraph,
    counter,
    dead_letter,
)


def patient_of(claim) -> str | None:
    """The patient a claim is billed to. Bills carry a name and hospital numbers, not a patient id the graph
    can trust; until a bureau supplies a mapping, claims are written without ``BILLED_TO``."""
    return None


class ReadBills(beam.DoFn):
    """A bill file → a ``GraphDoc`` of its claims, or a dead letter naming the stage that failed."""

    def __init__(self, catalogue: str | None = None, progress: Progress = NO_PROGRESS, keep_claims: bool = False,
                 register: str | None = None):
        self.catalogue_path, self.progress, self.keep_claims = catalogue, progress, keep_claims
        self.register_path = register  # None: MEDKG_HOSPITAL_REGISTER, read on the worker

    def setup(self):
        from core.settings import get_settings
        from ocr.pipeline import OcrEngine

        self.settings = get_settings()
        self.engine = OcrEngine.load(settings=self.settings)  # once per worker process
        self.catalogue = load_catalogue(self.catalogue_path) if self.catalogue_path else None
        register = self.register_path or self.settings.hospital_register
        self.register = load_register(register) if register else None
        self.inputs, self.pages = counter("inputs"), counter("pages")

    def process(self, path: str):
        from claims.document import structure_document
        from ocr.errors import InputError
        from ocr.readers import open_document

        self.inputs.inc()
        self.progress.add("file", 1)
        stage, doc_id = "read", None
        try:
            local = "://" not in path
            src = open_document(path) if local else open_document(
                read_bytes(path, self.settings.max_file_bytes), name=path)
            doc_id = src.document.doc_id
            stage = "ocr"
            pages = self.engine.read(src.pages(), doc_id)
            stage = "structure"
            claims = structure_document(pages)
            stage = "match"
            claims = with_bureau_data(claims, self.catalogue, self.register)
        except Exception as exc:  # noqa: BLE001 - one bad file must not stop the batch: dead-letter it
            # a page that fails to decode surfaces during OCR, but it is the file that is bad
            stage = "read" if isinstance(exc, (InputError, OSError)) else stage
            yield TaggedOutput(DEAD, dead_letter(path, stage, exc, doc_id))
            return
        self.pages.inc(len(pages))
        yield GraphDoc(path, doc_id, "write_claims", tuple((c, patient_of(c)) for c in claims),
                       _audit(pages, claims, self.keep_claims))


def _audit(pages, claims, keep_claims: bool = False) -> dict:
    """The audit row of a bill file; with ``keep_claims`` also every claim in full (``claim_documents``)."""
    full = {"claim_documents": [c.model_dump(mode="json") for c in claims]} if keep_claims else {}
    return {"kind": "bill", "pages": len(pages), **full, "claims": [{
        "page": c.page, "doc_type": c.doc_type.value,
        "total": None if c.total_figures is None else str(c.total_figures.value),
        "items": len(c.items), "matched": sum(i.match is not None for i in c.items),
        "findings": sorted({f.rule for f in c.findings if f.severity in ("error", "warning")}),
    } for c in claims]}


class IngestBills(beam.PTransform):
    """Paths of bill files → ``IngestOutputs`` (audit rows, dead letters)."""

    def __init__(self, target: GraphTarget, *, catalogue: str | None = None, graph_batch: int = 64,
                 graph_timeout_s: float = 300.0, progress: Progress = NO_PROGRESS, keep_claims: bool = False,
                 register: str | None = None):
        super().__init__()
        self.target, self.catalogue, self.keep_claims, self.register = target, catalogue, keep_claims, register
        self.graph_batch, self.graph_timeout_s, self.progress = graph_batch, graph_timeout_s, progress

    def expand(self, paths):
        read = paths | "OCR + structure" >> beam.ParDo(
            ReadBills(self.catalogue, self.progress, self.keep_claims, self.register)).with_outputs(DEAD, main="docs")
        written = read.docs | "Write claims" >> WriteToGraph(self.target, self.graph_batch, self.graph_timeout_s,
                                                             self.progress)
        dead = (read[DEAD], written[DEAD]) | "Bill dead letters" >> beam.Flatten()
        return IngestOutputs(written.written, dead)
