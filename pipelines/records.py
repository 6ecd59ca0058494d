"""`ingest records`: record files → records → NER (RunInference) → assertions → relations (RunInference) →
the graph.

Reading is cheap and a single file may hold thousands of records, so records are reshuffled after reading:
the NER stage then spreads over every worker whatever the files' sizes. Each model is loaded once per worker
process by its RunInference model handler, which also batches records (``BatchElements``) for it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

import apache_beam as beam

import pipelines.lean  # noqa: F401 - before RunInference: see its docstring

# isort: split
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult, RunInference
from apache_beam.pvalue import TaggedOutput

from core.records import ClinicalRecord, Entity, Relation
from pipelines.graphio import GraphTarget
from pipelines.sources import parse_records, read_bytes
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


class ReadRecords(beam.DoFn):
    """A record file → ``(reference, ClinicalRecord)`` per record; what is not a record → a dead letter."""

    def __init__(self, progress: Progress = NO_PROGRESS):
        self.progress = progress

    def setup(self):
        from core.settings import get_settings

        self.limit = get_settings().max_file_bytes
        self.inputs = counter("inputs")

    def process(self, path: str):
        from ocr.errors import LimitExceeded

        try:
            data = read_bytes(path, self.limit)
            if len(data) > self.limit:
                raise LimitExceeded(path, "max_file_bytes", len(data), self.limit, "file size (bytes)")
            parsed = list(parse_records(path, data))
        except Exception as exc:  # noqa: BLE001 - unreadable file: one input, dead-lettered
            parsed = [exc]
        self.inputs.inc(len(parsed))
        self.progress.add("file", len(parsed))
        for item in parsed:
            if isinstance(item, BaseException):
                yield TaggedOutput(DEAD, dead_letter(getattr(item, "ref", path), "read", item))
            else:
                yield item


class _TextModelHandler(ModelHandler):
    """A text model under RunInference: full batches, and a batch that fails is re-run record by record, so one
    bad record comes out as its own error (→ dead letter) and the rest of the batch still gets its results."""

    namespace = "medkg"

    def __init__(self, model_dir: str | None = None, max_batch_size: int = 32):
        # full batches from the start: the models pack a batch's windows by length, and a batch job has no
        # latency to trade for (BatchElements would otherwise begin at one record and grow)
        super().__init__(min_batch_size=max_batch_size, max_batch_size=max_batch_size)
        self.model_dir = model_dir

    @staticmethod
    def record(example) -> ClinicalRecord:
        return example

    def predict(self, batch: Sequence, model) -> list:
        """The model's output per example, or the exception that example alone raised."""
        texts = [self.record(x).text for x in batch]
        try:
            return model(texts)
        except Exception:  # noqa: BLE001
            return [_one(model, t) for t in texts]

    def run_inference(self, batch: Sequence, model, inference_args=None):
        return [PredictionResult(x, f, getattr(model, "name", "")) for x, f in zip(batch, self.predict(batch, model))]

    def get_num_bytes(self, batch: Sequence) -> int:
        return sum(len(self.record(x).text.encode("utf-8")) for x in batch)

    def get_metrics_namespace(self) -> str:
        return self.namespace


def _one(model, text: str):
    try:
        return model([text])[0]
    except Exception as exc:  # noqa: BLE001 - returned, not raised: the caller dead-letters this record only
        return exc


class NerHandler(_TextModelHandler):
    """RunInference's view of ``ner.tagger.Tagger``: records in, entities (or an exception) out."""

    namespace = "medkg.ner"

    def load_model(self):
        from ner.tagger import Tagger

        return Tagger.load(self.model_dir)


class RelationHandler(_TextModelHandler):
    """RunInference's view of ``relations.extract.RelationExtractor`` over (record, entities) pairs: the
    learned triples unified with the NER entities, plus the attribute rules (``relations.stage.relate``)."""

    namespace = "medkg.relations"

    @staticmethod
    def record(example) -> ClinicalRecord:
        return example[0]

    def load_model(self):
        from relations.extract import RelationExtractor

        return RelationExtractor.load(self.model_dir)

    def run_inference(self, batch: Sequence[tuple], model, inference_args=None):
        from relations.stage import relate

        def one(record, entities, extraction):
            try:
                return relate(record.text, entities, extraction)
            except Exception as exc:  # noqa: BLE001 - the caller dead-letters this record only
                return exc

        return [PredictionResult(x, f if isinstance(f, BaseException) else one(*x, f), getattr(model, "name", ""))
                for x, f in zip(batch, self.predict(batch, model))]


class Annotate(beam.DoFn):
    """NER output → assertions → ``(ref, (record, entities))`` (or a dead letter naming the stage)."""

    def process(self, keyed: tuple[str, PredictionResult]):
        from ner.assertions import assign

        ref, result = keyed
        record, found = result.example, result.inference
        if isinstance(found, BaseException):
            yield TaggedOutput(DEAD, dead_letter(ref, "ner", found, record.doc_id))
            return
        try:
            entities = assign(record.text, found)
        except Exception as exc:  # noqa: BLE001 - one record's failure is its dead letter, not the job's
            yield TaggedOutput(DEAD, dead_letter(ref, "assertions", exc, record.doc_id))
            return
        yield ref, (record, entities)


class ToGraphDoc(beam.DoFn):
    """``(ref, PredictionResult((record, ner entities), (entities, relations)))`` → a ``GraphDoc``."""

    def setup(self):
        self.entities, self.relations = counter("entities"), counter("relations")

    def process(self, keyed: tuple[str, PredictionResult]):
        ref, result = keyed
        record, _ = result.example
        if isinstance(result.inference, BaseException):
            yield TaggedOutput(DEAD, dead_letter(ref, "relations", result.inference, record.doc_id))
            return
        entities, relations = result.inference
        self.entities.inc(len(entities))
        self.relations.inc(len(relations))
        yield GraphDoc(ref, record.doc_id, "write_records", ((record, tuple(entities), tuple(relations)),),
                       _audit(record, entities, relations))


def _without_relations(keyed: tuple[str, tuple]) -> tuple[str, PredictionResult]:
    ref, (record, entities) = keyed
    return ref, PredictionResult((record, entities), (entities, []), "none")


def _audit(record: ClinicalRecord, entities: Sequence[Entity], relations: Sequence[Relation]) -> dict:
    return {"kind": "record", "patient_id": record.patient_id, "encounter_id": record.encounter_id,
            "chars": len(record.text), "entities": len(entities),
            "types": dict(Counter(e.type.value for e in entities)),
            "assertions": dict(Counter(e.assertion.value for e in entities if e.assertion.value != "affirmed")),
            "relations": len(relations)}


class IngestRecords(beam.PTransform):
    """Paths of record files → ``IngestOutputs`` (audit rows, dead letters)."""

    def __init__(self, target: GraphTarget, *, model_dir: str | None = None, ner_batch: int = 32,
                 relations: bool = True, re_model: str | None = None, graph_batch: int = 64,
                 graph_timeout_s: float = 300.0, progress: Progress = NO_PROGRESS):
        super().__init__()
        self.target, self.model_dir, self.ner_batch = target, model_dir, ner_batch
        self.relations, self.re_model = relations, re_model
        self.graph_batch, self.graph_timeout_s, self.progress = graph_batch, graph_timeout_s, progress

    def expand(self, paths):
        read = paths | "Read records" >> beam.ParDo(ReadRecords(self.progress)).with_outputs(DEAD, main="records")
        tagged = (read.records
                  | "Spread" >> beam.Reshuffle()
                  | "NER" >> RunInference(KeyedModelHandler(NerHandler(self.model_dir, self.ner_batch)))
                  | "Assertions" >> beam.ParDo(Annotate()).with_outputs(DEAD, main="tagged"))
        if self.relations:
            related = tagged.tagged | "Relations" >> RunInference(
                KeyedModelHandler(RelationHandler(self.re_model, self.ner_batch)))
        else:
            related = tagged.tagged | "No relations" >> beam.Map(_without_relations)
        docs = related | "Graph documents" >> beam.ParDo(ToGraphDoc()).with_outputs(DEAD, main="docs")
        written = docs.docs | "Write records" >> WriteToGraph(self.target, self.graph_batch, self.graph_timeout_s,
                                                              self.progress)
        dead = (read[DEAD], tagged[DEAD], docs[DEAD], written[DEAD]) | "Record dead letters" >> beam.Flatten()
        return IngestOutputs(written.written, dead)
