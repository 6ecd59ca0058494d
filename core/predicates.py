"""Relation vocabulary shared by the producer (``relations``) and the consumer (``graph``).

CMeIE (CBLUE) is the source of the concept-to-concept predicates: its labels are kept beside an English
relationship type, and its argument types map onto the graph's one entity schema.
"""

from __future__ import annotations

from core.records import EntityType as T

# CMeIE's 53 schemas (44 distinct predicates; data/re/cmeie/53_schemas.json) -> English relationship type.
# The source label is kept on the relationship as ``label``.
CMEIE_PREDICATES: dict[str, str] = {
    "临床表现": "HAS_MANIFESTATION",
    "治疗后症状": "HAS_POST_TREATMENT_SYMPTOM",
    "侵及周围组织转移的症状": "HAS_INVASION_SYMPTOM",
    "相关（症状）": "HAS_RELATED_SYMPTOM",
    "并发症": "HAS_COMPLICATION",
    "病理分型": "HAS_PATHOLOGICAL_TYPE",
    "相关（导致）": "CAUSES",
    "相关（转化）": "TRANSFORMS_INTO",
    "鉴别诊断": "DIFFERENTIAL_DIAGNOSIS",
    "药物治疗": "TREATED_WITH_DRUG",
    "手术治疗": "TREATED_WITH_PROCEDURE",
    "辅助治疗": "TREATED_WITH_ADJUVANT_THERAPY",
    "化疗": "TREATED_WITH_CHEMOTHERAPY",
    "放射治疗": "TREATED_WITH_RADIOTHERAPY",
    "实验室检查": "DIAGNOSED_BY_LAB_TEST",
    "影像学检查": "DIAGNOSED_BY_IMAGING",
    "辅助检查": "DIAGNOSED_BY_EXAM",
    "组织学检查": "DIAGNOSED_BY_HISTOLOGY",
    "内窥镜检查": "DIAGNOSED_BY_ENDOSCOPY",
    "筛查": "SCREENED_BY",
    "病因": "CAUSED_BY",
    "高危因素": "HAS_RISK_FACTOR",
    "风险评估因素": "HAS_RISK_ASSESSMENT_FACTOR",
    "病史": "HAS_HISTORY_FACTOR",
    "遗传因素": "HAS_GENETIC_FACTOR",
    "发病机制": "HAS_PATHOGENESIS",
    "病理生理": "HAS_PATHOPHYSIOLOGY",
    "发病部位": "AFFECTS_BODY_PART",
    "转移部位": "METASTASISES_TO",
    "外侵部位": "INVADES",
    "就诊科室": "TREATED_IN_DEPARTMENT",
    "预防": "PREVENTED_BY",
    "阶段": "HAS_STAGE",
    "同义词": "SYNONYM_OF",
    "多发群体": "HAS_HIGH_RISK_GROUP",
    "发病率": "HAS_INCIDENCE",
    "发病年龄": "HAS_ONSET_AGE",
    "多发地区": "HAS_HIGH_RISK_REGION",
    "发病性别倾向": "HAS_SEX_PREDILECTION",
    "死亡率": "HAS_MORTALITY",
    "多发季节": "HAS_HIGH_RISK_SEASON",
    "传播途径": "TRANSMITTED_BY",
    "预后状况": "HAS_PROGNOSIS",
    "预后生存率": "HAS_SURVIVAL_RATE",
}

# CMeIE argument types -> EntityType. 社会学 (e.g. 吸烟), 流行病学 (e.g. 发病率 5%), 预后 and 其他 (stages,
# prevention, departments named loosely) are factors a disease is related to, not clinical entities of
# their own: one ``Factor`` label keeps them queryable without inventing four node labels.
CMEIE_TYPES: dict[str, T] = {
    "疾病": T.disease, "症状": T.symptom, "药物": T.drug, "检查": T.exam, "手术治疗": T.procedure,
    "其他治疗": T.procedure, "部位": T.body_part, "社会学": T.factor, "流行病学": T.factor, "预后": T.factor,
    "其他": T.factor,
}

# Attribute links (relations.attributes): English type -> source label. Only HAS_BODY_SITE joins two concepts
# (a finding and a BodyPart); the others point at a value in the text (a Span), kept on the Relation record.
ATTRIBUTE_PREDICATES: dict[str, str] = {
    "HAS_DOSE": "剂量",
    "HAS_DOSE_UNIT": "剂量单位",
    "HAS_FREQUENCY": "频次",
    "HAS_ROUTE": "给药途径",
    "HAS_VALUE": "检验结果",
    "HAS_UNIT": "单位",
    "HAS_REFERENCE_RANGE": "参考范围",
    "HAS_ABNORMAL_FLAG": "异常标志",
    "HAS_BODY_SITE": "部位",
    "HAS_DATE": "日期",
}
