"""Entities and triples of clinical texts: NER, assertions, the learned extractor and the attribute rules.

    stage = RelationStage.load()
    [(entities, relations)] = stage(["患者确诊2型糖尿病，给予二甲双胍0.5g tid口服。"])

The NER model gives the text's entities (with assertion status). The relation model finds its own argument
spans (CMeIE's convention: spans may nest), so an argument that coincides with an NER entity (same span)
*is* that entity, keeping the NER type and assertion; any other argument joins the entity list with its
CMeIE type and the assertion the rules (``ner.assertions``) give it in this text: the 糖尿病 the relation
model finds inside ``父亲患有2型糖尿病`` is a family mention, not an affirmed one. Attribute rules (dose,
frequency, lab value, body site, date …) run on the NER entities.
"""

from __future__ import annotations

from collections.abc import Sequence

from core.records import Entity, Relation


class RelationStage:
    def __init__(self, tagger, extractor, link_attributes=None):
        self.tagger, self.extractor, self.link_attributes = tagger, extractor, link_attributes

    @classmethod
    def load(cls, ner_model=None, ner_backend: str | None = None, re_model=None, **kw) -> RelationStage:
        from ner.tagger import Tagger
        from relations.extract import RelationExtractor

        return cls(Tagger.load(ner_model, ner_backend),
                   RelationExtractor.load(re_model, **kw))

    @property
    def name(self) -> str:
        return f"{self.tagger.name}+{self.extractor.name}"

    def __call__(self, texts: Sequence[str]) -> list[tuple[list[Entity], list[Relation]]]:
        from ner.assertions import assign

        return [relate(text, assign(text, ents), ex, self.link_attributes)
                for text, ents, ex in zip(texts, self.tagger(texts), self.extractor(texts))]


def relate(text: str, entities: Sequence[Entity], extraction, link_attributes=None) -> tuple[list[Entity], list[Relation]]:
    """One text's NER entities (assertions set) and its extraction → (entities, relations): triple arguments
    unified with the NER entities of the same span, the attribute rules' links added."""
    if link_attributes is None:
        from relations.attributes import link_attributes
    by_span = {(e.span.start, e.span.end): e for e in entities}
    by_span.update(_asserted_arguments(text, entities, by_span, extraction.relations))
    relations = [r.model_copy(update={"subject": _unify(by_span, r.subject), "object": _unify(by_span, r.object)})
                 for r in extraction.relations]
    relations += link_attributes(text, entities)
    return sorted(by_span.values(), key=lambda e: (e.span.start, e.span.end)), relations


def _unify(by_span: dict[tuple[int, int], Entity], e: Entity) -> Entity:
    """The NER entity with ``e``'s span if there is one, else ``e`` (which joins the text's entities)."""
    return by_span.setdefault((e.span.start, e.span.end), e)


def _asserted_arguments(text: str, entities: Sequence[Entity], by_span: dict[tuple[int, int], Entity],
                        relations: Sequence[Relation]) -> dict[tuple[int, int], Entity]:
    """The triple arguments no NER entity covers, by span, with their assertion from the rules, read in the
    text beside the NER entities (whose own assertions are left as they are)."""
    from ner.assertions import assign

    extra: dict[tuple[int, int], Entity] = {}
    for r in relations:
        for e in (r.subject, r.object):
            span = (e.span.start, e.span.end)
            if isinstance(e, Entity) and span not in by_span:
                extra.setdefault(span, e)
    if not extra:
        return {}
    asserted = assign(text, [*entities, *extra.values()])[len(entities):]
    return {span: e for span, e in zip(extra, asserted)}
