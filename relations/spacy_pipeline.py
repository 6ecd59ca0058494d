"""medkg's clinical NLP as a spaCy pipeline: ``spacy.blank("zh")`` with medkg's tagger, assertion rules and
relations as its components, for users who know spaCy (``doc.ents``, ``ent._.assertion``, displaCy).

    from relations.spacy_pipeline import spacy_pipeline
    nlp = spacy_pipeline()                                   # shipped models, offline
    doc = nlp("主诉：咳嗽3天。否认糖尿病史。予头孢曲松抗感染。")
    [(e.text, e.label_, e._.assertion) for e in doc.ents]    # [('咳嗽', 'Symptom', 'affirmed'), ...]
    doc._.relations                                          # [SpanRelation(subject=…, predicate=…, object=…)]
    displacy.render(doc, style="ent")                        # HTML; render(doc) adds assertions and colours

Components (``nlp.pipe_names``), each a thin wrapper of one medkg stage, records in and records out:

- ``medkg_ner``: :class:`ner.tagger.Tagger` (the neural model on medkg's backends, OpenVINO or torch, as the
  precision policy picks; spaCy runs no model of its own);
- ``medkg_assertions``: :func:`ner.assertions.assign` (NegEx / ConText-style trigger rules);
- ``medkg_relations``: :class:`relations.extract.RelationExtractor` and the attribute rules, unified with the
  entities as :func:`relations.stage.relate` does (omitted with ``relations=False``).

Where things are on the ``Doc``:

- ``doc.spans["medkg"]``: every entity, nested ones included (medkg's entities nest: the body part 右下肺 inside
  the finding 右下肺可闻及湿啰音, a triple argument inside a longer mention), label = the graph's entity type
  (``Disease``, ``Symptom`` …). ``doc.ents`` cannot overlap, so it holds the longest of overlapping spans
  (:func:`spacy.util.filter_spans`): ``displacy.render(doc, style="ent")`` shows those, ``style="span"`` (with
  ``options={"spans_key": "medkg"}``) shows all;
- ``span._.assertion``: ``"affirmed"``, ``"negated"``, ``"possible"``, ``"historical"`` or ``"family"`` on the
  spans of both; ``span._.entity``: the medkg :class:`core.records.Entity` itself;
- ``doc._.relations``: :class:`SpanRelation` tuples (subject span, predicate, label, object span — or None for
  an attribute value such as a dose, whose text is in ``relation.object`` — and the medkg
  :class:`core.records.Relation`); ``doc._.medkg_entities``: the entity records, in text order.

Offsets: medkg's are character offsets into the text; the Chinese tokenizer of ``spacy.blank("zh")`` (its
default ``char`` segmenter: one token per character, no download, no pkuseg or jieba needed) makes every
character offset a token boundary, and spans are made with ``doc.char_span(..., alignment_mode="expand")`` so
another tokenizer (jieba) would widen a span to whole tokens rather than drop it.

The models load when the pipeline is built (about 15 s for both on two cores); pass a loaded
:class:`relations.stage.RelationStage` (``stage=``) to share one between pipelines. ``nlp.pipe(texts,
batch_size=32)`` batches the model calls.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from core.records import Entity, Relation

SPANS_KEY = "medkg"


class SpanRelation(NamedTuple):
    subject: object  # spacy.tokens.Span
    predicate: str
    label: str
    object: object | None  # spacy.tokens.Span, or None for an attribute value (text in relation.object)
    relation: Relation


def _extensions() -> None:
    from spacy.tokens import Doc, Span

    if not Span.has_extension("assertion"):
        Span.set_extension("assertion", default=None)
    if not Span.has_extension("entity"):
        Span.set_extension("entity", default=None)
    if not Doc.has_extension("medkg_entities"):
        Doc.set_extension("medkg_entities", default=None)
    if not Doc.has_extension("relations"):
        Doc.set_extension("relations", default=None)


def _batched(docs: Iterable, size: int) -> Iterator[list]:
    batch = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def set_entities(doc, entities: Sequence[Entity]):
    """Put medkg entities on ``doc``: ``doc._.medkg_entities``, ``doc.spans["medkg"]`` (all), ``doc.ents``
    (the longest of overlapping spans), each span with ``_.assertion`` and ``_.entity``."""
    from spacy.util import filter_spans

    entities = sorted(entities, key=lambda e: (e.span.start, e.span.end, e.type.value))
    spans = []
    for e in entities:
        span = doc.char_span(e.span.start, e.span.end, label=e.type.value, alignment_mode="expand")
        if span is None:  # only an empty or whitespace-only entity has no token
            continue
        span._.assertion, span._.entity = e.assertion.value, e
        spans.append(span)
    doc._.medkg_entities = list(entities)
    doc.spans[SPANS_KEY] = spans
    doc.ents = filter_spans(spans)  # doc.ents makes new Span objects; ``_`` values are kept per offsets and label
    return doc


def _span_of(doc, by_offsets: dict, e: Entity):
    return by_offsets.get((e.span.start, e.span.end, e.type.value))


# displaCy colours per entity type (``displacy.render(doc, style="ent", options={"colors": COLORS})``)
COLORS: dict[str, str] = {
    "Disease": "#f4a6a6", "Symptom": "#f7c98b", "Drug": "#a8d8a8", "Procedure": "#b9c7f0", "Exam": "#c9b3e6",
    "LabTest": "#9fd9e0", "BodyPart": "#e6e6a1", "Department": "#d9d9d9", "Microbe": "#e0b8d0",
    "Equipment": "#cfc0a8", "Item": "#d0e0c0", "Factor": "#e8d0b0",
}


def render(doc, nested: bool = False, **kw) -> str:
    """displaCy HTML of a doc's entities for a reviewer, each labelled with its type and, where not affirmed,
    its assertion (``Symptom·negated``). ``nested``: every entity (``doc.spans["medkg"]``, style ``span``)
    instead of the non-overlapping ``doc.ents``. Keyword arguments go to ``displacy.render``."""
    from spacy import displacy

    def label(span) -> str:
        a = span._.assertion
        return span.label_ if a in (None, "affirmed") else f"{span.label_}·{a}"

    spans = doc.spans[SPANS_KEY] if nested else doc.ents
    colors = {f"{t}·{a}": c for t, c in COLORS.items() for a in ("negated", "possible", "historical", "family")}
    colors.update(COLORS)
    if nested:
        data = {"text": doc.text, "tokens": [t.text for t in doc],
                "spans": [{"start_token": s.start, "end_token": s.end, "label": label(s)} for s in spans]}
        return displacy.render(data, style="span", manual=True, options={"colors": colors}, **kw)
    data = {"text": doc.text, "ents": [{"start": s.start_char, "end": s.end_char, "label": label(s)} for s in spans]}
    return displacy.render(data, style="ent", manual=True, options={"colors": colors}, **kw)


class MedkgNer:
    """``medkg_ner``: the tagger's entities on the doc (assertions not yet read: all ``affirmed``)."""

    def __init__(self, tagger=None, model: str | None = None, backend: str | None = None):
        self.tagger, self.model, self.backend = tagger, model, backend

    def _load(self):
        if self.tagger is None:
            from ner.tagger import Tagger

            self.tagger = Tagger.load(self.model, self.backend)
        return self.tagger

    def __call__(self, doc):
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable, batch_size: int = 32) -> Iterator:
        for batch in _batched(docs, batch_size):
            for doc, entities in zip(batch, self._load()([d.text for d in batch])):
                yield set_entities(doc, entities)


class MedkgAssertions:
    """``medkg_assertions``: :func:`ner.assertions.assign` over the doc's entities."""

    def __call__(self, doc):
        from ner.assertions import assign

        return set_entities(doc, assign(doc.text, doc._.medkg_entities or []))


class MedkgRelations:
    """``medkg_relations``: triples and attribute links (:func:`relations.stage.relate`); arguments that are
    no entity yet join the doc's entities with the assertion the rules give them."""

    def __init__(self, extractor=None, model: str | None = None):
        self.extractor, self.model = extractor, model

    def _load(self):
        if self.extractor is None:
            from relations.extract import RelationExtractor

            self.extractor = RelationExtractor.load(self.model)
        return self.extractor

    def __call__(self, doc):
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable, batch_size: int = 32) -> Iterator:
        from relations.stage import relate

        for batch in _batched(docs, batch_size):
            for doc, extraction in zip(batch, self._load()([d.text for d in batch])):
                entities, relations = relate(doc.text, doc._.medkg_entities or [], extraction)
                set_entities(doc, entities)
                by_offsets = {(s.start_char, s.end_char, s.label_): s for s in doc.spans[SPANS_KEY]}
                doc._.relations = [
                    SpanRelation(_span_of(doc, by_offsets, r.subject), r.predicate, r.label,
                                 _span_of(doc, by_offsets, r.object) if isinstance(r.object, Entity) else None, r)
                    for r in relations]
                yield doc


def _register() -> None:
    from spacy.language import Language

    if "medkg_ner" in Language.factories:
        return

    @Language.factory("medkg_ner", default_config={"model": None, "backend": None})
    def make_ner(nlp, name, model, backend):
        return MedkgNer(model=model, backend=backend)

    @Language.factory("medkg_assertions")
    def make_assertions(nlp, name):
        return MedkgAssertions()

    @Language.factory("medkg_relations", default_config={"model": None})
    def make_relations(nlp, name, model):
        return MedkgRelations(model=model)


# Importing this module registers the extensions and the component factories, so a pipeline saved with
# ``nlp.to_disk(path)`` loads again with ``spacy.load(path)`` (its components load the models they name).
_extensions()
_register()


def spacy_pipeline(ner_model: str | None = None, ner_backend: str | None = None, re_model: str | None = None,
                   relations: bool = True, stage=None):
    """A ``spacy.blank("zh")`` Language whose pipeline is ``medkg_ner``, ``medkg_assertions`` and (unless
    ``relations`` is False) ``medkg_relations``. Models are the shipped ones unless named (the same arguments
    as :meth:`relations.stage.RelationStage.load`); ``stage`` reuses a loaded ``RelationStage``'s models.
    Nothing is downloaded."""
    import spacy

    nlp = spacy.blank("zh")  # default segmenter "char": one token per character, offline
    ner = nlp.add_pipe("medkg_ner", config={"model": ner_model, "backend": ner_backend})
    nlp.add_pipe("medkg_assertions")
    ner.tagger = stage.tagger if stage is not None else None
    ner._load()
    if relations:
        rel = nlp.add_pipe("medkg_relations", config={"model": re_model})
        rel.extractor = stage.extractor if stage is not None else None
        rel._load()
    return nlp
