"""One entity schema for the graph, and how each dataset's labels map onto it.

A model keeps each dataset's *own* labels in its own head ("scheme"): Yidu-S4K and CMeEE annotate the
same words differently (CMeEE's ``pro`` covers exams too; Yidu splits 影像检查 / 实验室检验), so one shared
label set would teach the encoder two contradictory conventions. Types meet only at the output, here.
"""

from __future__ import annotations

from core.records import EntityType as T

SCHEMES: dict[str, dict[str, T]] = {
    "yidu": {"疾病和诊断": T.disease, "手术": T.procedure, "解剖部位": T.body_part, "药物": T.drug,
             "影像检查": T.exam, "实验室检验": T.lab_test},
    "cmeee": {"dis": T.disease, "sym": T.symptom, "pro": T.procedure, "equ": T.equipment, "dru": T.drug,
              "ite": T.item, "bod": T.body_part, "dep": T.department, "mic": T.microbe},
    # cMedQANER (online Q&A): crowd / physiology / feature / time have no place in the graph and are dropped
    "cmedqaner": {"disease": T.disease, "symptom": T.symptom, "drug": T.drug, "treatment": T.procedure,
                  "test": T.exam, "body": T.body_part, "department": T.department},
}

# Schemes whose annotation convention nests entities, with the labels that may hold others: CMeEE's guideline
# (CBLUE) lets a clinical manifestation (sym) contain entities of the other eight types (腹部 in 腹部疼痛). A BIO
# head is flat, so the inner entities come from the other heads (ner.tagger.Tagger.spans).
NESTED: dict[str, frozenset[str]] = {"cmeee": frozenset({"sym"})}


def bio_labels(scheme: str) -> list[str]:
    """``O`` then ``B-x``/``I-x`` per label, in the scheme's fixed order (index 0 is always ``O``)."""
    out = ["O"]
    for label in SCHEMES[scheme]:
        out += [f"B-{label}", f"I-{label}"]
    return out


def entity_type(scheme: str, label: str) -> T:
    return SCHEMES[scheme][label]
