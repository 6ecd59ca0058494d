"""Rule-based attribute links for Chinese clinical text: where the grammar is regular and no labels exist.

Given a text and its entities (from NER or gold), :func:`link_attributes` links

* a **drug** to its dose, dose unit, frequency and route (``阿莫西林0.5g tid口服``, ``口服硝苯地平30mg qd``);
* a **lab test** (or a measured **exam** such as 血压) to its value, unit, reference range and abnormal flag
  (``血糖7.8mmol/L↑（3.9-6.1）``, ``HBsAg阳性``, a flattened table row ``钾 3.2 mmol/L 3.5-5.5 L``);
* a **finding** (Disease / Symptom) to its body site, a BodyPart entity (``左下肢水肿``, ``右肺上叶见结节``);
* a **diagnosis** (Disease) or **procedure** to its date (``2023年5月12日行…术``, ``脑梗死（2020-08）``, and
  relative dates that count back from the record, ``3年前``, ``10余年前``, ``半年前``).

How the rules stay on the right entity:

* Each drug or test owns a *zone*: the text after it up to the next entity or the end of its sentence. The zone
  is read left to right as a sequence of attribute tokens and filler words (``每次``, ``餐后``, a parenthesised
  note or strength); the first token that is neither ends it. So a number that belongs to something else (an
  age, a bed, ``第2天``, ``共3天``, ``每周减5mg``, a rate ``2ml/h``) ends the zone instead of being taken, and no
  zone runs into the next drug's clause. A zone may continue past one comma only with attribute material
  (``每次1片，每日3次，口服``; ``…mmol/L↓，参考值135～145``).
* A route written *before* a drug (``静滴左氧氟沙星``) belongs to that drug and ends the previous drug's zone.
* Drugs mixed into one infusion (``NS 100ml + 头孢曲松钠2g ivgtt qd``, ``A加入B中静滴``, a nebulised pair) share
  route and frequency; ``+`` in a chemotherapy regimen (``奥沙利铂150MG+替吉奥60MG BID``) does not, since each
  drug keeps its own schedule. Drugs listed with ``、/和/及`` share them when the first has none of its own.
* Dates are found first and block every other rule, so ``2023-05-12`` is never a value or a range.
* A body site is the BodyPart nearest before a finding in its clause (at most a few words between, none of
  them a clause break or a word such as 后/伴/因 that starts another event), with coordinated sites
  (``左膝关节及右踝关节肿痛``) and listed findings (``腹部无压痛及反跳痛``) sharing it, or a site after
  ``位于`` (``结节位于甲状腺左叶``).
* A date dates the diagnoses and procedures after it in its clause (``3年前因胆囊结石行胆囊切除术``: both);
  with none after it, the nearest one before it (``冠心病（2019年确诊）``). A date standing alone or under a
  surgery label (``手术日期：…，手术名称：…``) dates the next clause; an admission or report date dates nothing.

Full-width forms (``０．５ｇ``, ``～``, ``：``) are folded one character to one character before matching, so
every offset indexes the original text and every output span is cut from it.

Conventions (the fixture ``tests/fixtures/attributes.jsonl`` follows them): the dose is the number (``0.5``,
``1-2``, ``两``) and the unit its own span; a qualitative result (阳性, 阴性, ``(+)``, ``(-)``) is a flag, not
a value; a trend (``较前升高``) and ``正常`` are not flags; a negated finding still has its site (the
negation is the entity's assertion); timing words equal to a frequency code are frequencies (必要时 = prn,
睡前 = hs, 立即 = st).

Confidence is fixed per rule (:data:`RULE_CONFIDENCE`): an attribute inside its owner's zone is the most
reliable; one inherited through a group, a list or a neighbouring clause less so.

``python -m relations.attributes tests/fixtures/attributes.jsonl [--split dev|holdout] [--errors]`` prints
precision / recall against the fixture.
"""

from __future__ import annotations

import argparse
import bisect
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from core.predicates import ATTRIBUTE_PREDICATES
from core.records import Entity, EntityType, Relation, Span

T = EntityType


RULE_CONFIDENCE: dict[str, float] = {
    "drug.zone": 0.9,  # dose / unit / frequency / route read in the drug's own zone
    "drug.pre_route": 0.85,  # 静滴左氧氟沙星: the route written before the drug
    "drug.group": 0.8,  # shared by drugs mixed into one infusion (A + B ivgtt)
    "drug.list": 0.75,  # shared by drugs listed with 、/和/及 when the first has none
    "lab.zone": 0.9,  # value / unit / flag / bracketed or keyword range right after the test
    "lab.table_range": 0.85,  # a bare range in a flattened table row
    "lab.next_clause": 0.8,  # …mmol/L，参考值135～145 / …，明显升高
    "site.adjacent": 0.9,  # 左下肢水肿
    "site.near": 0.8,  # 右肺上叶见结节, 双下肢轻度凹陷性水肿
    "site.located": 0.8,  # 结节位于甲状腺左叶
    "site.shared": 0.75,  # coordinated sites or listed findings
    "date.after": 0.85,  # 2018年5月12日行腹腔镜胆囊切除术
    "date.before": 0.8,  # 脑梗死（2020-08）
    "date.next_clause": 0.7,  # 手术日期：2023-06-01，手术名称：…
    "date.relative": 0.75,  # 3年前因胆囊结石行胆囊切除术
}

DRUG_TYPES = frozenset({T.drug})
MEASURED_TYPES = frozenset({T.lab_test, T.exam})
FINDING_TYPES = frozenset({T.disease, T.symptom})
DATED_TYPES = frozenset({T.disease, T.procedure})

# ---------------------------------------------------------------------------------------------------------
# Character folding: one character to one character, so offsets never move.

_FOLD = {0x3000: " ", 0x301C: "~", 0x00B5: "μ", 0x2010: "-", 0x2011: "-", 0x2012: "-", 0x2013: "-", 0x2014: "-",
         0x2212: "-", 0xFF5E: "~"}


def fold(text: str) -> str:
    """Full-width ASCII forms to ASCII (``０．５ｍｇ`` → ``0.5mg``), wave dashes to ``~``; same length as ``text``."""
    out = []
    for ch in text:
        o = ord(ch)
        if o in _FOLD:
            out.append(_FOLD[o])
        elif 0xFF01 <= o <= 0xFF5E:
            out.append(chr(o - 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------------------------------------------------
# Language data (matched on folded text), kept apart from the algorithm below.


def _alt(words: Iterable[str]) -> str:
    """An alternation that tries longer words first (静脉滴注 before 静滴, ivgtt before iv)."""
    return "|".join(re.escape(w) for w in sorted(set(words), key=len, reverse=True))


_NOT_LATIN_BEFORE, _NOT_LATIN_AFTER = r"(?<![A-Za-z])", r"(?![A-Za-z])"
NUM = r"\d+(?:\.\d+)?"
CN_NUM = r"[一二两三四五六七八九十半]+"
_SUPER = "⁰¹²³⁴⁵⁶⁷⁸⁹"

ROUTES_CN = (
    "口服", "静滴", "静点", "静脉滴注", "静推", "静注", "静脉推注", "静脉注射", "静脉泵入", "皮下泵入", "泵入", "微泵",
    "皮下注射", "皮下", "肌注", "肌内注射", "肌肉注射", "雾化吸入", "雾化", "吸入", "外用", "外敷", "外涂", "涂抹",
    "舌下含服", "含服", "嚼服", "冲服", "鼻饲", "灌肠", "纳肛", "塞肛", "滴眼", "点眼", "滴耳", "滴鼻", "喷鼻",
    "阴道给药", "鞘内注射", "关节腔注射",
)
ROUTES_EN = ("po", "p.o.", "iv", "i.v.", "ivgtt", "iv gtt", "iv.gtt", "ivdrip", "ivd", "im", "i.m.", "ih", "i.h.",
             "sc", "s.c.", "inh", "pr")
ROUTE_RE = re.compile(rf"(?:{_alt(ROUTES_CN)})|{_NOT_LATIN_BEFORE}(?:{_alt(ROUTES_EN)}){_NOT_LATIN_AFTER}",
                      re.IGNORECASE)
# Inside a zone a token boundary is known, so a code may follow a unit directly (50μgqd, 0.5gpo).
ROUTE_AT_RE = re.compile(rf"(?:{_alt(ROUTES_CN)})|(?:{_alt(ROUTES_EN)}){_NOT_LATIN_AFTER}", re.IGNORECASE)

FREQ_CODES = ("qd", "q.d.", "bid", "b.i.d.", "tid", "t.i.d.", "qid", "q.i.d.", "qn", "q.n.", "qod", "qw", "biw",
              "tiw", "prn", "p.r.n.", "st", "stat", "hs", "qm", "qam", "qpm", "qh")
_CN_COUNT = r"(?:\d+|[一二两三四五六七八九十])"
FREQ_RE = re.compile(
    rf"(?:q\d+[hdw]|{_alt(FREQ_CODES)}){_NOT_LATIN_AFTER}"  # q8h, and regimen cycles q3w / q21d
    rf"|(?:每日|每天|一日|一天|日|每晚|每晨|每早|每周|一周|每月){_CN_COUNT}次"
    rf"|{_CN_COUNT}次/(?:日|天|d|周|晚)"
    rf"|每(?:{_CN_COUNT}(?:-{_CN_COUNT})?|半)(?:个)?(?:小时|h|分钟|min|天|日|周)(?:{_CN_COUNT}次)?"
    r"|隔日(?:一次|1次)?|每晚|每晨|每早|必要时|临时|立即|睡前",
    re.IGNORECASE,
)

DOSE_UNITS = ("万IU", "万U", "万单位", "mg/kg", "μg/kg", "ug/kg", "mcg", "μg", "ug", "mg", "g", "ml", "IU", "U",
              "单位", "mmol", "克", "毫克", "毫升", "微克", "片", "粒", "袋", "支", "丸", "滴", "喷", "揿", "吸", "包",
              "贴", "枚", "瓶", "剂")
# A dose is a number and a unit; a unit followed by ``/h``, ``/min``… is a rate, not a dose.
_CODE_NEXT = rf"(?=(?:q\d+[hdw]|{_alt(FREQ_CODES + ROUTES_EN)}){_NOT_LATIN_AFTER})"
DOSE_RE = re.compile(
    rf"(?P<num>{NUM}(?:\s*[-~]\s*{NUM})?|{CN_NUM})\s*(?P<unit>{_alt(DOSE_UNITS)})(?:(?![A-Za-z])|{_CODE_NEXT})"
    r"(?!\s*/\s*[^次\s])",
    re.IGNORECASE,
)
DRUG_FILLER_RE = re.compile(
    r"\s+|[,:]|/次|\([^()]{0,24}\)"
    r"|中|每次|一次|单次|首剂|首次|以后|之后|然后|剂量|用量|用法|适量|餐后|餐前|饭后|饭前|晨起|空腹|快速|缓慢|持续"
    r"|片剂|胶囊|注射液|缓释片|控释片|肠溶片|颗粒|混悬液|口服液|滴眼液|软膏|乳膏|气雾剂"
)
GROUP_RE = re.compile(r"\s*(?:\+|加入|加|溶于|兑)\s*")  # drugs mixed into one infusion, or a regimen (A+B)
VEHICLE_RE = re.compile(r"氯化钠|盐水|葡萄糖|注射用水|林格|NS|GS|GNS", re.IGNORECASE)  # what an infusion is mixed in
NEBULISED_RE = re.compile(r"雾化")
LIST_RE = re.compile(r"\s*(?:、|和|及|与|,)\s*")  # drugs listed: 予A、B口服
PRE_ROUTE_GAP_RE = re.compile(r"\s*")

LAB_UNITS = (
    "×10^9/L", "×10^12/L", "×10^6/L", "x10^9/L", "x10^12/L", "*10^9/L", "*10^12/L", "10^9/L", "10^12/L",
    "×10⁹/L", "×10¹²/L", "mmol/L", "μmol/L", "umol/L", "nmol/L", "pmol/L", "mol/L", "mg/L", "mg/dL", "g/L", "g/dL",
    "ng/mL", "pg/mL", "μg/L", "ug/L", "μg/dL", "ng/L", "U/L", "IU/L", "IU/mL", "U/mL", "mU/L", "mIU/L", "mIU/mL",
    "μIU/mL", "uIU/mL", "copies/mL", "cells/μL", "个/μL", "/μL", "/HP", "/LP", "个/HP", "mmHg", "kPa", "次/分",
    "次/min", "bpm", "%", "fL", "pg", "mm/h", "mL/min", "ml/min/1.73m2", "ml/min/1.73m²", "mL/min/1.73m2", "s",
    "秒", "℃", "°C", "kg", "cm", "mm",
)
LAB_UNIT_RE = re.compile(rf"(?:{_alt(LAB_UNITS)})(?:(?![A-Za-z])|(?=[HL](?![A-Za-z])))", re.IGNORECASE)  # g/LL
FLAG_RE = re.compile(
    r"↑+|↓+|偏高|偏低|升高|降低|增高|减低|增多|减少|弱阳性|强阳性|阳性|阴性|异常"
    r"|\((?:\+{1,4}|-|±|[HL])\)|[HL](?![A-Za-z])"  # matched only at a token boundary (a zone position)
)
# A value: blood pressure 120/80, or a number with an optional comparator and power of ten (2.3×10^5).
VALUE_RE = re.compile(
    rf"\d{{2,3}}/\d{{2,3}}(?!\d)|(?:[<>≤≥]\s*)?{NUM}(?:\s*[×xX*]\s*10\^?[0-9{_SUPER}]+(?![0-9{_SUPER}]*\s*/))?"
)
RANGE = rf"[<>≤≥]\s*{NUM}|{NUM}\s*[-~]\s*{NUM}"
RANGE_KEYWORDS = ("参考值", "参考范围", "参考区间", "正常值", "正常范围", "正常参考值", "正常参考范围", "ref")
RANGE_RE = re.compile(
    rf"(?:{_alt(RANGE_KEYWORDS)})\s*:?\s*(?P<kw>{RANGE})"
    rf"|\(\s*(?:(?:{_alt(RANGE_KEYWORDS)})\s*:?\s*)?(?P<br>{RANGE})\s*(?:{_alt(LAB_UNITS)})?\s*\)",
    re.IGNORECASE,
)
BARE_RANGE_RE = re.compile(rf"(?P<bare>{RANGE})(?![\d.])")
LAB_FILLER_RE = re.compile(
    r"\s+|:|\([A-Za-z][A-Za-z0-9\-% ]{0,11}\)|为|是|计数|定量|测定|值|结果|最高|最低|约|达|明显|显著|轻度|稍"
)
# After a value, these words say the number was an age, a bed, a date…, not a result.
NOT_A_RESULT_RE = re.compile(r"\s*(?:[年月日岁床号天周个次例]|小时)")
VALUE_NEXT_RANGE_RE = re.compile(r"\s*[-~]\s*\d")
LIST_NUMBER_RE = re.compile(r"\d{1,2}(?:[.、)](?!\d)|\s*[、)])")

DATE_RE = re.compile(
    r"(?<!\d)(?:19|20)\d{2}年(?:\d{1,2}月(?:\d{1,2}[日号])?)?"
    r"|(?<![\d.])(?:19|20)\d{2}[-/.](?:1[0-2]|0?[1-9])(?:[-/.](?:3[01]|[12]\d|0?[1-9]))?(?![\d.])"
    r"|(?<!\d)(?:1[0-2]|0?[1-9])月(?:3[01]|[12]\d|0?[1-9])[日号]"
)
RELATIVE_DATE_RE = re.compile(rf"(?<![第\d])(?:\d+|{CN_NUM})(?:余|多)?个?(?:天|日|周|星期|月|年)(?:余|多)?前")
# Labels whose date is not the date of the diagnosis or procedure that follows them.
DATE_LABEL_RE = re.compile(r"(?:入院|出院|报告|出生|送检|检查|采样|记录|就诊|门诊)(?:日期|时间)\s*:?\s*$")
SURGERY_LABEL_RE = re.compile(r"(?:手术|诊断|确诊)(?:日期|时间)\s*:?\s*$")
DATE_LEAD_RE = re.compile(r"\s*(?:于|在|自)?\s*$")

SENTENCE_BREAKS = "。;!?\n"
CLAUSE_BREAKS = SENTENCE_BREAKS + ","
SITE_GAP_MAX = 8
# A gap with one of these starts another event (头部外伤后头痛, 腹痛腹胀诊为乙状结肠癌), names a test
# (手足麻木在当地医院查血糖升高), opens a bracket the finding sits in (盆腔包块（卵巢CA？）), or is a list or a
# measurement (关节痛、鼻衄, 心脏增大 心房纤颤, 食管距门齿28CM）鳞癌).
SITE_BLOCK_RE = re.compile(r"后|伴|因|致|行|予|术|并|但|经|较|在|查|诊为|诊断|、|(?<![闻触扪累波涉未])及|和|\(|[“”\"]|\d|\s")
SITE_LIST_RE = re.compile(r"\s*(?:、|及|和|与|或|以及)\s*")
SITE_LOCATED_RE = re.compile(r"\s*(?:位于|见于|局限于|累及)\s*")


# ---------------------------------------------------------------------------------------------------------
# The document: folded text, breaks and entity indexes shared by the rules.


@dataclass
class _Doc:
    text: str
    folded: str
    entities: list[Entity]  # sorted by (start, -end)
    starts: list[int] = field(default_factory=list)
    by_end: list[Entity] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    clause_breaks: list[int] = field(default_factory=list)
    sentence_breaks: list[int] = field(default_factory=list)
    blocked: list[tuple[int, int]] = field(default_factory=list)  # date spans, sorted

    def __post_init__(self) -> None:
        self.starts = [e.span.start for e in self.entities]
        self.by_end = sorted(self.entities, key=lambda e: (e.span.end, e.span.start))
        self.ends = [e.span.end for e in self.by_end]
        self.clause_breaks = [i for i, ch in enumerate(self.folded) if ch in CLAUSE_BREAKS]
        self.sentence_breaks = [i for i in self.clause_breaks if self.folded[i] in SENTENCE_BREAKS]

    def next_entity_start(self, pos: int) -> int:
        i = bisect.bisect_left(self.starts, pos)
        return self.starts[i] if i < len(self.starts) else len(self.text)

    def entity_starting_at(self, pos: int) -> Entity | None:
        i = bisect.bisect_left(self.starts, pos)
        return self.entities[i] if i < len(self.starts) and self.starts[i] == pos else None

    def entity_ending_before(self, pos: int) -> Entity | None:
        """The entity whose end is the nearest at or before ``pos`` (the innermost when several end there)."""
        i = bisect.bisect_right(self.ends, pos)
        return self.by_end[i - 1] if i else None

    def sentence_end(self, pos: int) -> int:
        i = bisect.bisect_left(self.sentence_breaks, pos)
        return self.sentence_breaks[i] if i < len(self.sentence_breaks) else len(self.text)

    def clause(self, pos: int) -> tuple[int, int]:
        """[start, end) of the clause holding ``pos`` (breaks excluded)."""
        i = bisect.bisect_right(self.clause_breaks, pos)
        start = self.clause_breaks[i - 1] + 1 if i else 0
        j = bisect.bisect_left(self.clause_breaks, pos)
        end = self.clause_breaks[j] if j < len(self.clause_breaks) else len(self.text)
        return start, end

    def has_break(self, start: int, end: int, breaks: str = CLAUSE_BREAKS) -> bool:
        return any(ch in breaks for ch in self.folded[start:end])

    def blocked_at(self, pos: int) -> bool:
        i = bisect.bisect_right(self.blocked, (pos, len(self.text) + 1))
        return bool(i) and self.blocked[i - 1][0] <= pos < self.blocked[i - 1][1]

    def overlaps_blocked(self, start: int, end: int) -> bool:
        i = bisect.bisect_left(self.blocked, (end, -1))
        return bool(i) and self.blocked[i - 1][1] > start

    def span(self, start: int, end: int) -> Span:
        return Span(start=start, end=end, text=self.text[start:end])

    def evidence(self, a: int, b: int) -> Span:
        """The clause(s) from the one holding ``a`` to the one holding ``b - 1`` (``a < b``), outer whitespace
        trimmed."""
        start, end = min(self.clause(a)[0], a), max(self.clause(b - 1)[1], b)
        while start < end and self.text[start].isspace():
            start += 1
        while end > start and self.text[end - 1].isspace():
            end -= 1
        return self.span(start, end)


@dataclass(frozen=True)
class _Link:
    subject: Entity
    predicate: str
    start: int  # object span (for HAS_BODY_SITE, the BodyPart entity's span)
    end: int
    rule: str
    site: Entity | None = None


# ---------------------------------------------------------------------------------------------------------
# Drugs


@dataclass
class _DrugZone:
    links: list[_Link]
    stop: int  # where reading stopped
    preds: set[str]


def _drug_token(doc: _Doc, pos: int, limit: int) -> tuple[re.Match[str], list[tuple[str, str | int]]] | None:
    """The token at ``pos``: a match and the (predicate, group) pairs it carries; fillers carry none."""
    f = doc.folded
    if m := FREQ_RE.match(f, pos, limit):
        return m, [("HAS_FREQUENCY", 0)]
    if m := ROUTE_AT_RE.match(f, pos, limit):
        return m, [("HAS_ROUTE", 0)]
    if m := DOSE_RE.match(f, pos, limit):
        return m, [("HAS_DOSE", "num"), ("HAS_DOSE_UNIT", "unit")]
    if m := DRUG_FILLER_RE.match(f, pos, limit):
        return m, []
    return None


def _scan_drug(doc: _Doc, drug: Entity, claimed: set[int]) -> _DrugZone:
    """Read dose, unit, frequency and route in the drug's zone; stop at the first other word."""
    pos, limit = drug.span.end, min(doc.next_entity_start(drug.span.end), doc.sentence_end(drug.span.end))
    links: list[_Link] = []
    while pos < limit and pos not in claimed and (tok := _drug_token(doc, pos, limit)):
        m, parts = tok
        if parts and doc.overlaps_blocked(m.start(), m.end()):
            break  # a date is never a dose
        links.extend(_Link(drug, pred, m.start(g), m.end(g), "drug.zone") for pred, g in parts)
        pos = m.end()
    return _DrugZone(links, pos, {lk.predicate for lk in links})


def _pre_routes(doc: _Doc, drugs: list[Entity]) -> dict[int, tuple[int, int]]:
    """Routes written right before a drug (``口服硝苯地平``), keyed by the drug's start."""
    starts = {d.span.start for d in drugs}
    found: dict[int, tuple[int, int]] = {}
    for m in ROUTE_RE.finditer(doc.folded):
        gap = PRE_ROUTE_GAP_RE.match(doc.folded, m.end())
        if gap and gap.end() in starts and not doc.blocked_at(m.start()):
            found[gap.end()] = (m.start(), m.end())
    return found


def _link_drugs(doc: _Doc) -> list[_Link]:
    drugs = [e for e in doc.entities if e.type in DRUG_TYPES]
    if not drugs:
        return []
    pre = _pre_routes(doc, drugs)
    claimed = {s for s, _ in pre.values()}
    zones = [_scan_drug(doc, d, claimed) for d in drugs]
    out: list[_Link] = []
    for drug, zone in zip(drugs, zones):
        out.extend(zone.links)
        if drug.span.start in pre and "HAS_ROUTE" not in zone.preds:
            s, e = pre[drug.span.start]
            out.append(_Link(drug, "HAS_ROUTE", s, e, "drug.pre_route"))
            zone.preds.add("HAS_ROUTE")
    out.extend(_share_drug_attributes(doc, drugs, zones, out))
    return out


def _drug_groups(doc: _Doc, drugs: list[Entity], zones: list[_DrugZone]) -> list[tuple[list[int], str]]:
    """Runs of drugs that share route and frequency, with the rule that joins them.

    ``+`` joins an infusion only when it is a mixture (a vehicle such as NS / 5%GS in it, or a nebulised pair):
    in a chemotherapy regimen (``奥沙利铂150MG+替吉奥60MG BID``) each drug keeps its own schedule."""
    groups: list[tuple[list[int], str]] = []
    i = 0
    while i < len(drugs):
        group, kind, mixed = [i], "", False
        while group[-1] + 1 < len(drugs):
            j = group[-1]
            gap_start, nxt = zones[j].stop, drugs[j + 1].span.start
            if (m := GROUP_RE.fullmatch(doc.folded, gap_start, nxt)) and kind in ("", "drug.group"):
                kind, mixed = "drug.group", mixed or m.group().strip() != "+"
            elif not zones[j].links and LIST_RE.fullmatch(doc.folded, gap_start, nxt) and kind in ("", "drug.list"):
                kind = "drug.list"
            else:
                break
            group.append(j + 1)
        mixed = mixed or any(VEHICLE_RE.search(doc.folded[drugs[k].span.start:drugs[k].span.end]) for k in group) \
            or any(NEBULISED_RE.search(doc.folded[lk.start:lk.end]) for k in group for lk in zones[k].links)
        if len(group) > 1 and (kind == "drug.list" or mixed):
            groups.append((group, kind))
        i = group[-1] + 1
    return groups


def _share_drug_attributes(doc: _Doc, drugs: list[Entity], zones: list[_DrugZone], links: list[_Link]) -> list[_Link]:
    """Route and frequency shared along an infusion mixture (A + B ivgtt) or a bare list (予A、B口服)."""
    by_drug: dict[int, list[_Link]] = {}
    for lk in links:
        by_drug.setdefault(id(lk.subject), []).append(lk)
    shared: list[_Link] = []
    for group, kind in _drug_groups(doc, drugs, zones):
        for pred in ("HAS_ROUTE", "HAS_FREQUENCY"):
            source = [lk for k in group for lk in by_drug.get(id(drugs[k]), []) if lk.predicate == pred]
            for k in group:
                if pred not in zones[k].preds:
                    shared.extend(_Link(drugs[k], pred, lk.start, lk.end, kind) for lk in source)
    return shared


# ---------------------------------------------------------------------------------------------------------
# Lab tests and measured exams


def _match_value(doc: _Doc, pos: int, limit: int) -> re.Match[str] | None:
    m = VALUE_RE.match(doc.folded, pos, limit)
    if not m or VALUE_NEXT_RANGE_RE.match(doc.folded, m.end(), limit):
        return None  # 2.0-3.0 right after a test is a target range, not its result
    if NOT_A_RESULT_RE.match(doc.folded, m.end(), limit) and not LAB_UNIT_RE.match(doc.folded, m.end(), limit):
        return None  # 56岁, 8床, 2023年
    if LIST_NUMBER_RE.match(doc.folded, m.start(), limit):
        return None  # 胸片：1.双肺纹理增多
    return m


def _lab_token(doc: _Doc, pos: int, limit: int, got: dict[str, _Link], after_comma: bool
               ) -> tuple[re.Match[str], str, str | int, str] | None:
    """The token at ``pos`` as (match, predicate, group, rule); a filler has predicate ``""``. Each attribute is
    taken once; after a comma only a flag or a range may follow (…mmol/L，参考值135～145)."""
    f = doc.folded
    if "HAS_ABNORMAL_FLAG" not in got and (m := FLAG_RE.match(f, pos, limit)):
        return m, "HAS_ABNORMAL_FLAG", 0, "lab.zone"
    if "HAS_REFERENCE_RANGE" not in got and (m := RANGE_RE.match(f, pos, limit)):
        return m, "HAS_REFERENCE_RANGE", "kw" if m.group("kw") else "br", "lab.zone"
    if not after_comma and "HAS_VALUE" not in got and (m := _match_value(doc, pos, limit)):
        return m, "HAS_VALUE", 0, "lab.zone"
    if not after_comma and "HAS_VALUE" in got:
        if "HAS_UNIT" not in got and (m := LAB_UNIT_RE.match(f, pos, limit)):
            return m, "HAS_UNIT", 0, "lab.zone"
        if "HAS_REFERENCE_RANGE" not in got and (m := BARE_RANGE_RE.match(f, pos, limit)):
            return m, "HAS_REFERENCE_RANGE", 0, "lab.table_range"
    if m := LAB_FILLER_RE.match(f, pos, limit):
        return m, "", 0, ""
    return None


def _scan_lab(doc: _Doc, test: Entity) -> list[_Link]:
    """Read value, unit, range and flag after a test; one comma may lead on to a flag or a keyword range."""
    pos, limit = test.span.end, min(doc.next_entity_start(test.span.end), doc.sentence_end(test.span.end))
    got: dict[str, _Link] = {}
    after_comma = False
    while pos < limit:
        if doc.folded[pos] == "," and got and not after_comma:
            after_comma, pos = True, pos + 1
            continue
        tok = _lab_token(doc, pos, limit, got, after_comma)
        if tok is None or (tok[1] and doc.overlaps_blocked(tok[0].start(), tok[0].end())):
            break  # a date is never a result or a range
        m, pred, g, rule = tok
        if pred:
            got[pred] = _Link(test, pred, m.start(g), m.end(g), "lab.next_clause" if after_comma else rule)
        pos = m.end()
    if test.type != T.lab_test and "HAS_VALUE" in got and "HAS_UNIT" not in got:
        del got["HAS_VALUE"]  # an exam's number needs a unit (血压120/80mmHg); 胸片2 is not a result
    return list(got.values())


def _link_labs(doc: _Doc) -> list[_Link]:
    return [lk for e in doc.entities if e.type in MEASURED_TYPES for lk in _scan_lab(doc, e)]


# ---------------------------------------------------------------------------------------------------------
# Body sites


def _site_before(doc: _Doc, finding: Entity) -> tuple[Entity, str] | None:
    """The BodyPart nearest before ``finding`` in its clause, with only a few words between."""
    left = doc.entity_ending_before(finding.span.start)
    if left is None or left.type != T.body_part or finding.span.start - left.span.end > SITE_GAP_MAX:
        return None
    gap = doc.folded[left.span.end:finding.span.start]
    if (doc.has_break(left.span.end, finding.span.start, CLAUSE_BREAKS + ":")
            or SITE_BLOCK_RE.search(gap) or _entity_inside(doc, left.span.end, finding.span.start)):
        return None
    return left, ("site.adjacent" if not gap.strip() else "site.near")


def _entity_inside(doc: _Doc, start: int, end: int) -> bool:
    i = bisect.bisect_left(doc.starts, start)
    return i < len(doc.starts) and doc.starts[i] < end


def _coordinated_sites(doc: _Doc, site: Entity) -> list[Entity]:
    """BodyParts listed before ``site`` with 、/及/和 (左膝关节及右踝关节)."""
    out: list[Entity] = []
    cur = site
    while (left := doc.entity_ending_before(cur.span.start)) is not None and left.type == T.body_part \
            and SITE_LIST_RE.fullmatch(doc.folded, left.span.end, cur.span.start):
        out.append(left)
        cur = left
    return out


def _link_sites(doc: _Doc) -> list[_Link]:
    out: list[_Link] = []
    sites_of: dict[int, list[Entity]] = {}  # finding start -> its sites, for listed findings
    findings = [e for e in doc.entities if e.type in FINDING_TYPES]
    for f in findings:
        sites: list[tuple[Entity, str]] = []
        if found := _site_before(doc, f):
            site, rule = found
            sites = [(site, rule)] + [(s, "site.shared") for s in _coordinated_sites(doc, site)]
        elif (left := doc.entity_ending_before(f.span.start)) is not None and left.type in FINDING_TYPES \
                and SITE_LIST_RE.fullmatch(doc.folded, left.span.end, f.span.start) and left.span.start in sites_of:
            sites = [(s, "site.shared") for s in sites_of[left.span.start]]
        if not sites and (m := SITE_LOCATED_RE.match(doc.folded, f.span.end)):
            right = doc.entity_starting_at(m.end())
            if right is not None and right.type == T.body_part:
                sites = [(right, "site.located")]
        sites_of[f.span.start] = [s for s, _ in sites]
        out.extend(_Link(f, "HAS_BODY_SITE", s.span.start, s.span.end, rule, site=s) for s, rule in sites)
    return out


# ---------------------------------------------------------------------------------------------------------
# Dates


def _find_dates(doc: _Doc) -> list[tuple[int, int, bool]]:
    """(start, end, relative) of every date, left to right, overlaps dropped."""
    spans = [(m.start(), m.end(), False) for m in DATE_RE.finditer(doc.folded)]
    spans += [(m.start(), m.end(), True) for m in RELATIVE_DATE_RE.finditer(doc.folded)]
    spans.sort(key=lambda s: (s[0], -s[1]))
    out: list[tuple[int, int, bool]] = []
    for s in spans:
        if not out or s[0] >= out[-1][1]:
            out.append(s)
    return out


def _dated_in(doc: _Doc, start: int, end: int) -> list[Entity]:
    i = bisect.bisect_left(doc.starts, start)
    out = []
    while i < len(doc.entities) and doc.starts[i] < end:
        e = doc.entities[i]
        if e.type in DATED_TYPES and e.span.end <= end:
            out.append(e)
        i += 1
    return out


def _link_dates(doc: _Doc, dates: list[tuple[int, int, bool]]) -> list[_Link]:
    out: list[_Link] = []
    date_starts = [d[0] for d in dates]
    for i, (ds, de, relative) in enumerate(dates):
        c_start, c_end = doc.clause(ds)
        stop = min(c_end, date_starts[i + 1]) if i + 1 < len(dates) else c_end  # up to the next date
        targets, rule = _dated_in(doc, de, stop), "date.after"
        if not targets:
            since = max(c_start, dates[i - 1][1]) if i else c_start  # back to the previous date
            before = _dated_in(doc, since, ds)
            targets, rule = before[-1:], "date.before"
        if not targets and not _dated_in(doc, c_start, c_end):
            lead = doc.folded[c_start:ds]
            alone = DATE_LEAD_RE.fullmatch(lead) and not doc.folded[de:c_end].strip(" :")
            if (alone or SURGERY_LABEL_RE.search(lead)) and not DATE_LABEL_RE.search(lead) and c_end < len(doc.text) \
                    and doc.folded[c_end] not in SENTENCE_BREAKS:
                n_start, n_end = doc.clause(c_end + 1)
                targets, rule = _dated_in(doc, n_start, n_end), "date.next_clause"
        if relative and rule != "date.next_clause":
            rule = "date.relative"
        out.extend(_Link(t, "HAS_DATE", ds, de, rule) for t in targets)
    return out


# ---------------------------------------------------------------------------------------------------------
# Entry point


def _validated(text: str, entities: Sequence[Entity]) -> list[Entity]:
    for i, e in enumerate(entities):
        s = e.span
        if not 0 <= s.start < s.end <= len(text):
            raise ValueError(f"entity {i} ({s.text!r}): span [{s.start}, {s.end}) is empty or outside the text "
                             f"of length {len(text)}")
        if text[s.start:s.end] != s.text:
            raise ValueError(f"entity {i}: span [{s.start}, {s.end}) reads {text[s.start:s.end]!r} in the text, "
                             f"not {s.text!r}")
    return sorted(entities, key=lambda e: (e.span.start, -e.span.end))


def _is_code(e: Entity) -> bool:
    """A frequency or route code tagged as an entity (NER reads ``tid`` as a drug now and then): it is an
    attribute, not an owner, and left in place it would end the real drug's zone before its own code."""
    f = fold(e.span.text)
    return any((m := rx.match(f)) is not None and m.end() == len(f) for rx in (FREQ_RE, ROUTE_RE))


def link_attributes(text: str, entities: Sequence[Entity], model: str = "medkg-rules-1") -> list[Relation]:
    """Attribute relations for ``entities`` of ``text``, in text order of (subject, object).

    Raises ``ValueError`` when an entity's span is empty, lies outside the text or disagrees with it.
    """
    ents = [e for e in _validated(text, entities) if not _is_code(e)]
    if not ents:
        return []
    doc = _Doc(text, fold(text), ents)
    dates = _find_dates(doc)
    doc.blocked = [(s, e) for s, e, _ in dates]
    links = _link_drugs(doc) + _link_labs(doc) + _link_sites(doc) + _link_dates(doc, dates)
    seen: set[tuple[int, int, str, int, int]] = set()
    out: list[Relation] = []
    for lk in sorted(links, key=lambda lk: (lk.subject.span.start, lk.start, lk.predicate)):
        key = (lk.subject.span.start, lk.subject.span.end, lk.predicate, lk.start, lk.end)
        if key in seen:
            continue
        seen.add(key)
        obj: Entity | Span = lk.site if lk.site is not None else doc.span(lk.start, lk.end)
        out.append(Relation(subject=lk.subject, predicate=lk.predicate, label=ATTRIBUTE_PREDICATES[lk.predicate],
                            object=obj, evidence=doc.evidence(min(lk.subject.span.start, lk.start),
                                                              max(lk.subject.span.end, lk.end)),
                            confidence=RULE_CONFIDENCE[lk.rule], model=model))
    return out


# ---------------------------------------------------------------------------------------------------------
# Evaluation on an annotated fixture


def load_fixture(path: str | Path, split: str | None = None) -> list[dict]:
    """Lines of a fixture (``text``, ``entities``, ``links``, optional ``split``), optionally one split only."""
    rows = [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if split is None or r.get("split") == split]


def fixture_entities(row: dict) -> list[Entity]:
    text = row["text"]
    return [Entity(span=Span(start=e["start"], end=e["end"], text=text[e["start"]:e["end"]]), type=EntityType(e["type"]))
            for e in row["entities"]]


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f1, 4), "tp": tp, "fp": fp, "fn": fn}


def evaluate(path: str | Path, split: str | None = None, errors: bool = False) -> dict:
    """Micro precision / recall of :func:`link_attributes` on a fixture; a link is correct when its subject
    span, predicate and object span all equal a gold link's. ``split`` keeps one part (``dev``, ``holdout``)."""
    counts = {p: [0, 0, 0] for p in ATTRIBUTE_PREDICATES}  # tp, fp, fn
    wrong: list[dict] = []
    rows = load_fixture(path, split)
    for row in rows:
        gold = {(tuple(g["subject"]), g["predicate"], tuple(g["object"])) for g in row["links"]}
        pred = set()
        for r in link_attributes(row["text"], fixture_entities(row)):
            obj = r.object.span if isinstance(r.object, Entity) else r.object
            pred.add(((r.subject.span.start, r.subject.span.end), r.predicate, (obj.start, obj.end)))
        for kind, items, idx in (("fp", pred - gold, 1), ("fn", gold - pred, 2)):
            for s, p, o in sorted(items):
                counts[p][idx] += 1
                wrong.append({"id": row.get("id"), "kind": kind, "subject": row["text"][s[0]:s[1]], "predicate": p,
                              "object": row["text"][o[0]:o[1]], "text": row["text"]})
        for _, p, _ in pred & gold:
            counts[p][0] += 1
    tp, fp, fn = (sum(c[i] for c in counts.values()) for i in range(3))
    result = {**_prf(tp, fp, fn), "sentences": len(rows), "per_predicate": {p: _prf(*c) for p, c in counts.items()}}
    if errors:
        result["errors"] = wrong
    return result


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("fixture")
    ap.add_argument("--split", choices=("dev", "holdout"))
    ap.add_argument("--errors", action="store_true", help="list false positives and false negatives")
    args = ap.parse_args(argv)
    print(json.dumps(evaluate(args.fixture, args.split, args.errors), ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
