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
    # CCKS 2017 (real EMR sections). Five types, two of which the graph splits: 检查和检验 holds imaging, lab tests
    # and physical examination alike (左髋部X光片, 血常规, 查体) and maps to Exam, the wider of the two; 治疗 is
    # mostly drugs (抗生素, 布地奈德, 0.9%氯化钠注射液: 748 of 841 in the training part, by a word rule) beside operations
    # (阑尾切除术) and maps to Drug. 症状和体征 covers signs too (骨折, 压痛, 三凹征) and is annotated whether
    # affirmed or negated (无发热 -> 发热): the Symptom type carries both, the assertion stage tells them apart.
    "ccks17": {"症状和体征": T.symptom, "身体部位": T.body_part, "检查和检验": T.exam, "治疗": T.drug,
               "疾病和诊断": T.disease},
}

# Graph types a scheme folds into one of its labels besides the ones its labels map to (scoring a model that has
# no head for the scheme, by its graph output: ner.train.predict). CCKS 2017's one exam type and one treatment type.
FOLDED: dict[str, dict[T, str]] = {"ccks17": {T.lab_test: "检查和检验", T.procedure: "治疗"}}

# Schemes whose annotation convention nests entities, with the labels that may hold others: CMeEE's guideline
# (CBLUE) lets a clinical manifestation (sym) contain entities of the other eight types (腹部 in 腹部疼痛). A BIO
# head is flat, so the inner entities come from the other heads (ner.tagger.Tagger.spans).
NESTED: dict[str, frozenset[str]] = {"cmeee": frozenset({"sym"})}

# The graph output (ner.tagger.Tagger.__call__): the primary head gives the entities, the other heads add only the
# types it lacks, in this order of preference: real EMR text (CCKS 2017's 症状和体征: 无胸痛, 未闻及干湿啰音) before
# textbook prose (CMeEE's sym: 腹壁静脉曲张 as a clause) before online Q&A. A head not listed comes last.
SECONDARY_ORDER: tuple[str, ...] = ("ccks17", "cmeee", "cmedqaner")

# Labels whose spans may enclose the primary's entities whole in the graph output: a symptom around its body part
# (腹部疼痛 around 腹部, 胸痛 around 胸), where the primary head, which has no symptom type, took only the part.
ENCLOSING: dict[str, frozenset[str]] = {"cmeee": frozenset({"sym"}), "ccks17": frozenset({"症状和体征"})}


def bio_labels(scheme: str) -> list[str]:
    """``O`` then ``B-x``/``I-x`` per label, in the scheme's fixed order (index 0 is always ``O``)."""
    out = ["O"]
    for label in SCHEMES[scheme]:
        out += [f"B-{label}", f"I-{label}"]
    return out


def entity_type(scheme: str, label: str) -> T:
    return SCHEMES[scheme][label]


def scheme_label(scheme: str, typ: T) -> str | None:
    """The scheme's label for a graph type (its own mapping inverted, then ``FOLDED``), or None where it has none."""
    for label, t in SCHEMES[scheme].items():
        if t == typ:
            return label
    return FOLDED.get(scheme, {}).get(typ)
