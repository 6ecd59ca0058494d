"""Clinical records in (one at a time, synchronously): NER, assertions, relations -> the graph. Bulk record
files go through ``medkg ingest records`` (the same stages as a Beam pipeline)."""

from __future__ import annotations

from api.graph_access import GraphAccess
from api.models import Models
from core.records import ClinicalRecord, Entity


def _name(arg) -> str:
    span = arg.span if isinstance(arg, Entity) else arg
    return span.text


class RecordService:
    def __init__(self, graph: GraphAccess, models: Models):
        self.graph, self.models = graph, models

    def post(self, body) -> dict:
        record = ClinicalRecord.of(body.text, patient_id=body.patient_id, encounter_id=body.encounter_id,
                                   recorded_on=body.recorded_on, source_uri="api")
        with self.models.use("records") as stage:
            [(entities, relations)] = stage([record.text])
        person = {k: v for k, v in (("sex", body.sex), ("birth_year", body.birth_year)) if v is not None}

        def write(writer):
            writer.write_records([(record, tuple(entities), tuple(relations))])
            if person:
                writer.merge_nodes("Patient", "pid", [{"pid": record.patient_id, **person}])

        self.graph.write(write)
        return {"doc_id": record.doc_id, "patient_id": record.patient_id, "encounter_id": record.encounter_id,
                "entities": [{"type": e.type.value, "text": e.span.text, "start": e.span.start, "end": e.span.end,
                              "assertion": e.assertion, "confidence": e.confidence} for e in entities],
                "relations": [{"subject": _name(r.subject), "predicate": r.predicate, "object": _name(r.object),
                               "evidence": r.evidence.text} for r in relations]}
