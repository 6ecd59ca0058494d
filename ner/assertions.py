"""Assertion status of clinical entities in Chinese text: negated, possible, historical, family.

A rule stage in the spirit of NegEx / ConText: trigger phrases govern the entities in their *scope*.

* A pre-trigger (``无``, ``否认``, ``考虑``, ``既往``, ``父亲`` …) governs entities after it, up to the end of
  its clause (``，：？`` …), of its sentence (``。；`` and new lines), or a terminator word (``但``, ``伴`` …).
  List separators (``、及和``) do not end a scope, so ``无发热、咳嗽、咳痰`` negates every item.
* A post-trigger (``？``, ``可能``, ``待排``, ``…病史``, ``阴性`` …) governs entities before it, back to the
  start of its clause or the last terminator.
* Pseudo-triggers (``无明显诱因``, ``无痛``, ``结合病史`` …) are matched like triggers so that the shorter
  trigger inside them never fires; they govern nothing.
* A body part that is the subject of a negated or hedged clause (``肝脏无转移结节``,
  ``腹壁及盆底未触及种植结节``) takes that status: the finding it locates is what the clause denies.
* Text inside an entity's own span is opaque: its punctuation ends no scope and its words trigger nothing
  (Yidu spans such as ``肝左叶多发环形强化结节病灶，考虑转移瘤`` describe one finding).

When several classes reach one entity, :data:`PRECEDENCE` decides (family > negated > possible >
historical): a relative's condition is never the patient's, whatever else is said; a denial is the strongest
statement about the patient (``否认高血压病史`` is negated, not historical); a hedge about the past stays a hedge.

Data in, data out: :func:`assign` returns copies of the entities with ``assertion`` set, in the same order.
``python -m ner.assertions LABELS.jsonl [--data DIR]`` prints per-class precision / recall on our assertion labels of
Yidu-S4K training sentences (``tests/fixtures/assertion_labels.jsonl``; the sentences are read from the data set).
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.records import Assertion, Entity, EntityType, Span
from ner.schema import SCHEMES

A = Assertion
T = EntityType

# ---------------------------------------------------------------------------------------------------------
# Language data. Kept apart from the algorithm below; longest match wins where phrases overlap
# (``不除外`` beats ``除外``, ``无明显诱因`` beats ``无``), so each list may hold prefixes of another's phrases.

NEGATION_PRE = (
    "否认", "无", "没有", "未见", "未闻及", "未触及", "未扪及", "未及", "未查见", "未发现", "未检出", "未探及",
    "未引出", "未查", "未累及", "未侵及", "未侵犯", "未诉", "无诉", "未出现", "未现", "未有", "未曾", "未行", "未予", "未做",
    "未服用", "未使用", "不伴", "不伴有", "排除", "已排除", "已除外", "不考虑", "暂不考虑",
)
# After the finding. ``阴性``/``（-）`` deny a finding (``乙肝阴性``) but after a test they are its result, so
# they only apply to findings (see _POST_TYPES).
NEGATION_POST = ("阴性", "（-）", "(-)", "（－）", "已排除", "可排除")
POSSIBLE_PRE = (
    "考虑", "考虑为", "可能", "可能为", "疑似", "疑为", "疑", "可疑", "怀疑", "待排", "待排除", "不除外", "不能除外",
    "不排除", "不能排除", "待除外", "倾向", "倾向于",
)
POSSIBLE_POST = (
    "？", "?", "可能", "可能大", "可能性大", "之可能", "待排", "待排除", "不除外", "不能除外", "不排除", "不能排除",
    "待查", "待除外",
)
# Only explicit history: a dated event of the present illness (``3月前行…术``, ``曾于外院就诊``) stays affirmed.
HISTORICAL_PRE = ("既往", "既往史", "既往有", "曾患", "素有")
HISTORICAL_POST = ("史", "病史")  # 有高血压、糖尿病病史 / 冠心病史10余年 / 否认…接触史 (then negated)
# Family: a history section governs its sentence; a kinship word only its clause (其女儿陪同就诊，… is not
# about the daughter's health, so 家人 / 家属 are left out).
FAMILY_SECTION = ("家族史", "家族中", "家族成员", "一级亲属", "家族遗传史")
FAMILY = (
    "父亲", "母亲", "其父", "其母", "父母", "父：", "母：",
    "兄弟", "姐妹", "哥哥", "姐姐", "弟弟", "妹妹", "儿子", "女儿", "子女", "祖父", "祖母", "外祖父", "外祖母",
    "爷爷", "奶奶", "外公", "外婆", "伯父", "叔叔", "舅舅", "姑姑", "姨妈", "同胞",
)
PSEUDO = (
    # 无 / 未 in words and set phrases that deny nothing about a finding
    "无明显诱因", "无诱因", "无明显原因", "无明确诱因", "无明显诱因及原因", "无痛", "无水", "无创", "无菌", "无法",
    "无效", "无关", "无明显相关", "无明显关系", "无规律", "无明显规律", "无锡", "无名", "无明显变化", "无明显改变",
    "无明显好转", "无好转", "无缓解", "未见好转", "未见明显好转", "未见缓解", "未见改善", "未予重视", "未能",
    "无殊", "无特殊",
    # hedges that are not about a finding
    "考虑到", "可能性小", "可能性不大", "性质？", "性质?", "性质待定",
    # 史 / 家族 in words that are not a history
    "结合病史", "结合患者病史", "结合临床病史", "现病史", "病史资料", "病史及", "家族性", "个人史", "婚育史",
    "月经史", "母细胞",
)
# Words that end a scope: a change of topic (但), a new positive finding (伴, 出现) or a new action (后于 …).
TERMINATORS = (
    "但", "但是", "然而", "伴", "伴有", "并伴", "仍有", "偶有", "时有", "出现", "提示", "示", "后于", "后行", "后予",
    "后给予", "后在", "予以", "给予",
)
# A family section's scope is its sentence unless the patient is named again.
FAMILY_TERMINATORS = ("患者", "患儿", "本人")
# Between a body part and the negation that makes it the subject of a denied finding: list words, other body
# parts, the rest of an organ's name (Yidu tags 肠 in 肠系膜, 腹 in 腹膜), locatives and specimen words, and a
# lymph-node count (``胃壁、十二指肠及肝组织均未见癌侵犯``, ``肠系膜根部未见…``, ``找到肠周淋巴结23个，均未见…``).
SUBJECT_FILLER = re.compile(  # words before single characters: the first alternative that matches is kept
    r"(?:另送|送检|组织|[上下近远双两]?切[缘端]|标本|表面|周围|周边|系膜|黏膜|粘膜|根部|肋下|肋上|\d+(?:/\d+)?[枚个]，?"
    r"|[\s、及和与或等均皆内部处区旁侧膜管壁腔（）()\uE000])*"
)
# ``淋巴结0/12``: none of the nodes examined holds a tumour, a negative finding at that site.
NODE_NEGATIVE = re.compile(r"[（(]?0/\d+")
# A hedge ending an entity's own span (Yidu tags ``贲门肿瘤可能？``) hedges that entity.
OWN_HEDGE = ("？", "?", "可能", "可能大", "可能性大", "待排", "不除外")

CLAUSE_BREAKS = "，,：:？?！!"
SENTENCE_BREAKS = "。；;\n\r"

PRECEDENCE = (A.family, A.negated, A.possible, A.historical)
_FINDINGS = frozenset({T.disease, T.symptom, T.microbe})
# Post-triggers that only make sense after a finding: a lab test "阴性" is a result, a body part "待查" is a
# symptom to work up (``腹痛待查``), not a hedged diagnosis.
_POST_TYPES = {"阴性": _FINDINGS, "（-）": _FINDINGS, "(-)": _FINDINGS, "（－）": _FINDINGS, "待查": _FINDINGS}
# Entity text is replaced while triggers are searched: body parts by _MASK_BODY (a subject filler), others by _MASK.
_MASK_BODY, _MASK = "\uE000", "\uE001"

# Yidu-S4K labels (same mapping as ner.schema's "yidu" scheme), for the annotated fixtures.
YIDU_TYPES: dict[str, EntityType] = SCHEMES["yidu"]


# ---------------------------------------------------------------------------------------------------------
# Algorithm.


@dataclass(frozen=True)
class _Trigger:
    start: int
    end: int
    phrase: str
    kind: str  # "pre", "post", "pseudo", "term"
    cls: Assertion | None


def _lexicon() -> dict[str, list[tuple[str, Assertion | None]]]:
    """phrase -> [(kind, class)]: one phrase may be both a pre- and a post-trigger (``可能``, ``待排``)."""
    lex: dict[str, list[tuple[str, Assertion | None]]] = {}
    for phrases, kind, cls in (
        (NEGATION_PRE, "pre", A.negated), (NEGATION_POST, "post", A.negated),
        (POSSIBLE_PRE, "pre", A.possible), (POSSIBLE_POST, "post", A.possible),
        (HISTORICAL_PRE, "pre", A.historical), (HISTORICAL_POST, "post", A.historical),
        (FAMILY, "pre", A.family), (FAMILY_SECTION, "pre", A.family), (FAMILY_SECTION, "post", A.family),
        (PSEUDO, "pseudo", None), (TERMINATORS, "term", None),
    ):
        for p in phrases:
            lex.setdefault(p, []).append((kind, cls))
    return lex


_LEX = _lexicon()
_TRIGGER_RE = re.compile("|".join(re.escape(p) for p in sorted(_LEX, key=len, reverse=True)))


# A bare 未 ("not") denies only the entity it stands right before (恶心，未呕吐 / 患儿未发热 / 未见红): before anything
# else it is a word's first character (未婚, 未成年) or an adverb of time (未明显缓解). All 13 bare 未 before an
# annotated entity in the CCKS 2017 training part are such denials, each before a symptom.
_BARE_NEGATION = re.compile(f"未(?=[{_MASK_BODY}{_MASK}])")


def _triggers(masked: str) -> list[_Trigger]:
    out = []
    for m in _TRIGGER_RE.finditer(masked):
        for kind, cls in _LEX[m.group()]:
            out.append(_Trigger(m.start(), m.end(), m.group(), kind, cls))
    covered = {i for t in out for i in range(t.start, t.end)}
    out += [_Trigger(m.start(), m.end(), m.group(), "pre", A.negated) for m in _BARE_NEGATION.finditer(masked)
            if m.start() not in covered]
    return sorted(out, key=lambda t: t.start)


_FULL_STOP = re.compile(r"\.(?!\d)")  # an ASCII full stop, not a decimal point (3.5CM)


def _normalise(text: str) -> str:
    """Same length as ``text``, with ASCII full stops read as sentence ends."""
    return _FULL_STOP.sub("。", text)


def _mask(text: str, entities: Sequence[Entity]) -> str:
    chars = list(_normalise(text))
    for e in entities:
        for i in range(max(0, e.span.start), min(len(text), e.span.end)):
            chars[i] = _MASK_BODY if e.type is T.body_part else _MASK
    return "".join(chars)


def _break_before(masked: str, i: int, breaks: str) -> int:
    """Index just after the last break character before ``i`` (0 if none)."""
    return max(masked.rfind(c, 0, i) for c in breaks) + 1


def _break_after(masked: str, i: int, breaks: str) -> int:
    ends = [j for j in (masked.find(c, i) for c in breaks) if j >= 0]
    return min(ends, default=len(masked))


def sentence_of(text: str, index: int) -> tuple[int, int]:
    """``(start, end)`` of the sentence holding character ``index`` (end exclusive, terminator included)."""
    norm = _normalise(text)
    start = _break_before(norm, index, SENTENCE_BREAKS)
    end = _break_after(norm, index, SENTENCE_BREAKS)
    return start, min(len(text), end + 1)


def _scope(masked: str, trig: _Trigger, terms: Sequence[_Trigger]) -> tuple[int, int]:
    """Character range a trigger governs, per its direction and class."""
    section = trig.kind == "pre" and trig.phrase in FAMILY_SECTION  # 家族史：… governs its sentence
    breaks = SENTENCE_BREAKS if section else SENTENCE_BREAKS + CLAUSE_BREAKS
    if trig.kind == "pre":
        end = _break_after(masked, trig.end, breaks)
        if section:
            stops = [j for w in FAMILY_TERMINATORS if (j := masked.find(w, trig.end)) >= 0]
        else:
            stops = [t.start for t in terms if t.start >= trig.end]
        return trig.end, min([end, *stops])
    start = _break_before(masked, trig.start, breaks)
    starts = [t.end for t in terms if t.end <= trig.start]
    return max([start, *starts]), trig.start


def _subject_class(masked: str, e: Entity, triggers: Sequence[_Trigger]) -> Assertion | None:
    """Negated / possible for a body part directly followed by a denial or hedge (``肝脏无转移结节``)."""
    if NODE_NEGATIVE.match(masked, e.span.end):
        return A.negated
    at = SUBJECT_FILLER.match(masked, e.span.end).end()
    for t in triggers:
        if t.start == at and t.kind == "pre" and t.cls in (A.negated, A.possible):
            return t.cls
    return None


def _applies(trig: _Trigger, e: Entity) -> bool:
    allowed = _POST_TYPES.get(trig.phrase) if trig.kind == "post" else None
    return allowed is None or e.type in allowed


def assign(text: str, entities: Sequence[Entity]) -> list[Entity]:
    """The entities with ``assertion`` set from the cues around them, in the same order."""
    if not entities:
        return []
    masked = _mask(text, entities)
    triggers = _triggers(masked)
    terms = [t for t in triggers if t.kind == "term"]
    found: list[set[Assertion]] = [set() for _ in entities]
    for trig in triggers:
        if trig.cls is None:
            continue
        lo, hi = _scope(masked, trig, terms)
        for k, e in enumerate(entities):
            if lo <= e.span.start and e.span.end <= hi and _applies(trig, e):
                found[k].add(trig.cls)
    out = []
    for k, e in enumerate(entities):
        if text[e.span.start:e.span.end].endswith(OWN_HEDGE):
            found[k].add(A.possible)
        if e.type is T.body_part and (cls := _subject_class(masked, e, triggers)):
            found[k].add(cls)
        status = next((c for c in PRECEDENCE if c in found[k]), A.affirmed)
        out.append(e.model_copy(update={"assertion": status}))
    return out


# ---------------------------------------------------------------------------------------------------------
# Evaluation on annotated sentences (tests/fixtures/assertion_labels.jsonl, with the texts from the data set).


def _entities(example: Mapping, types: Mapping[str, EntityType]) -> list[Entity]:
    s = example["sentence"]
    return [
        Entity(span=Span(start=g["start"], end=g["end"], text=s[g["start"]:g["end"]]),
               type=types.get(g["type"]) or EntityType(g["type"]))
        for g in example["entities"]
    ]


def evaluate(examples: Iterable[Mapping], types: Mapping[str, EntityType] = YIDU_TYPES) -> dict:
    """Per-class precision / recall of :func:`assign` on gold spans.

    ``examples``: dicts with ``sentence`` and ``entities`` (``start``, ``end`` exclusive, ``type`` a dataset
    label mapped by ``types`` or an :class:`EntityType` value, gold ``assertion``). Precision is ``None`` for a
    class never predicted, recall ``None`` for a class never annotated.
    """
    counts = {c.value: {"tp": 0, "fp": 0, "fn": 0} for c in Assertion}
    n_sent = n_ent = correct = 0
    errors = []
    for ex in examples:
        n_sent += 1
        pred = assign(ex["sentence"], _entities(ex, types))
        for g, p in zip(ex["entities"], pred):
            n_ent += 1
            gold, got = g["assertion"], p.assertion.value
            if gold == got:
                counts[gold]["tp"] += 1
                correct += 1
            else:
                counts[gold]["fn"] += 1
                counts[got]["fp"] += 1
                errors.append({"source": ex.get("source", ""), "sentence": ex["sentence"], "entity": g["text"],
                               "gold": gold, "predicted": got})
    classes = {}
    for c, k in counts.items():
        pred_n, gold_n = k["tp"] + k["fp"], k["tp"] + k["fn"]
        p = k["tp"] / pred_n if pred_n else None
        r = k["tp"] / gold_n if gold_n else None
        f1 = 2 * p * r / (p + r) if p and r else (0.0 if p is not None and r is not None else None)
        classes[c] = {"support": gold_n, "predicted": pred_n, "precision": _round(p), "recall": _round(r),
                      "f1": _round(f1)}
    return {"sentences": n_sent, "entities": n_ent, "accuracy": _round(correct / n_ent if n_ent else None),
            "classes": classes, "errors": errors}


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


YIDU_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "ner" / "yidu_s4k"  # ../shared beside the checkout


def load_labels(path: str | Path, data_dir: str | Path = YIDU_DIR) -> list[dict]:
    """Annotated sentences for :func:`evaluate`: our labels (one JSON object a line: ``source`` ``partN:record``,
    the ``sha256`` of that record's text, the ``sentence``'s [start, end) in it, and ``entities`` as [start, end,
    assertion] in the sentence) joined with the sentence and the entity types read from the Yidu-S4K training
    files in ``data_dir``. No text of the data set is kept in the project; a record whose text is not the one
    labelled is an error, not a silent mismatch."""
    from ner.data import DataFormatError, load_yidu, text_sha256

    records: dict[str, list] = {}
    out = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        r = json.loads(line)
        part, index = r["source"].split(":")
        if part not in records:
            records[part] = load_yidu(Path(data_dir) / f"subtask1_training_{part}.txt")
        record = records[part][int(index)]
        if text_sha256(record.text) != r["sha256"]:
            raise DataFormatError(f"{r['source']}: the record's text differs from the one the labels were made on")
        at, end = r["sentence"]
        types = {(s - at, e - at): label for s, e, label in record.spans}
        sentence = record.text[at:end]
        out.append({"source": r["source"], "sentence": sentence, "entities": [
            {"start": s, "end": e, "text": sentence[s:e], "type": types[s, e], "assertion": a}
            for s, e, a in r["entities"]]})
    return out


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m ner.assertions LABELS.jsonl [--data DIR] [--source part2] [--errors]``: per-class P/R as JSON."""
    ap = argparse.ArgumentParser(prog="python -m ner.assertions", description=main.__doc__)
    ap.add_argument("files", nargs="+")
    ap.add_argument("--data", default=str(YIDU_DIR), help="the Yidu-S4K folder (subtask1_training_part1/2.txt)")
    ap.add_argument("--source", default="", help="only examples whose source starts with this (e.g. part2)")
    ap.add_argument("--errors", action="store_true", help="list the misclassified entities too")
    args = ap.parse_args(argv)
    examples = [ex for f in args.files for ex in load_labels(f, args.data) if ex["source"].startswith(args.source)]
    report = evaluate(examples)
    if not args.errors:
        report.pop("errors")
    print(json.dumps(report, ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
