"""Catalogue matching: top-1 accuracy on catalogue names corrupted like OCR corrupts them, and speed.

Data: the example catalogue in ../shared/data/catalog (drug and service restriction rules, material
classes; no licence, so read in place and never copied). Names are split by ``md5(name)``: first hex digit
0–7 is "dev" (threshold and weights are tuned there only), 8–f is "test" (reported). A name whose second
hex digit is ``f`` is left *out* of the index: its corrupted forms are out-of-catalogue items, which should
come back unmatched (they measure false matches; they are the hardest kind, near-duplicates of what is
indexed). Each name is queried ``--variants`` times, each time corrupted by a seeded generator:

- one misread (two for names of 6+ characters, 30 %): a look-alike character (氯/氧, 叁/参, 己/已, 未/末 …),
  a dropped character, a doubled character or a dropped bracket;
- formatting noise (each 30 %): full-/half-width punctuation, spaces inside the name.

"bill-style" adds what bills print around a name (pack spec, (进口)/(甲类), full-width brackets) on top.
A query is correct when its top match, at the threshold, has the right code or the same normalised name
(entries that share a name cannot be told apart from a bill line). Prints one JSON object.

    .venv/bin/python benchmarks/catalogue.py [--catalog ../shared/data/catalog] [--seed 0] [--variants 3]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the project importable
    sys.path[0] = str(Path(__file__).resolve().parents[1])

import argparse
import hashlib
import json
import random
import time
from dataclasses import dataclass

import numpy as np

from claims import catalogue as catmod
from claims.catalogue import Catalogue, ColumnMap
from claims.names import normalise_name

ROOT = Path(__file__).resolve().parents[1]
CATALOG_DIR = ROOT.parent / "shared" / "data" / "catalog"
SOURCES = (  # file, columns (the files' own headers; a bureau's file would name its own)
    ("drug_restriction_rules.csv", None),
    ("service_restriction_rules.csv", None),
    ("material_class_dict.csv", ColumnMap(code="类目编码", name="类目名称", category="费用项目")),
)

# Look-alike characters OCR confuses on printed bills: one stroke or one radical apart.
_LOOKALIKE_GROUPS = """
氯氧氨氦 叁参 己已巳 未末 术木 测侧恻 儿几 抗杭坑 血皿 体休 查杳 疗疔 液夜 治冶 检捡俭 宫官 注住往 粒拉 精情睛
阴阳 验险 颗棵 科料 丸九 试拭 子孑了 管菅 妇归 白自臼 电甩 细纽 胞孢 素索 除徐 复夏 清请 浆桨 糖塘 内肉 膜馍
合含 炎灸 心必 腔控 人入八 镜境 卵卯 加如 栓拴 菌茵 普晋 甲申由 型形 超起 方万 活括 乳孔 宁丁 利刺剌 颈领
唑坐 调凋 因困 肌饥 益盖 功切 凝疑 西酉 列例 静净 肝肚 胎抬 压庄 用甩 脑恼 肺沛 殊株珠 胺按 引弓 培陪 肾贤
母毋 结洁 气乞 力刀 平乎 金全 冲仲 剂济 脂指酯 酮铜 移侈 格恪 椎推 间问 葡匍 理埋 膏高 补朴 微徽 胃胄 曲由
酚盼 环坏 导异 直真 正止 诊珍 波坡 下卞 磺璜 护扩 钠纳 伤仿 像象 健键 监盐 罗岁 时吋 免兔 塞赛 肢枝 干于千
地他 大太犬 板扳 罐灌 米来 水永 面而 吸汲 费贵 腾滕 勒勤 紫柴 计汁 接按 坦垣 硝销 那哪 布市 短矩 扎札 瑞端
洗冼 织识 练炼 脾牌 工土 机杌 辅铺 网冈 肽呔 助肋 炔快 抑仰 氏氐 丙两 瓣辦 肪防 析折 彩采 烧浇 温湿 淋林
海悔 味昧 天夭 土士 日曰 王玉 刀力 己巳 今令 折拆 侯候 酸峻 钙钨 钾钟 射躬 片爿 性姓 毒毐 茎径 输偷 声芦
O0 l1 I1 S5 B8 Z2
"""
LOOKALIKES: dict[str, str] = {}
for _group in _LOOKALIKE_GROUPS.split():
    for _ch in _group:
        LOOKALIKES[_ch] = LOOKALIKES.get(_ch, "") + "".join(c for c in _group if c != _ch)

_WIDTH = {"(": "（", ")": "）", "-": "－", "/": "／", ",": "，", ":": "：", "+": "＋", "%": "％",
          **{chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F) if chr(c).isalnum()}}
_WIDTH.update({v: k for k, v in list(_WIDTH.items())})


def corrupt(name: str, rng: random.Random) -> tuple[str, list[str]]:
    """A misread of ``name``: 1–2 hard errors plus formatting noise. Returns (text, ops)."""
    chars, ops = list(name), []
    hard = 1 + (len(name) >= 6 and rng.random() < 0.3)
    for _ in range(hard):
        looks = [i for i, c in enumerate(chars) if c in LOOKALIKES]
        brackets = [i for i, c in enumerate(chars) if c in "()（）"]
        body = [i for i, c in enumerate(chars) if c not in "()（）"]
        r = rng.random()
        if r < 0.5 and looks:
            i = rng.choice(looks)
            chars[i] = rng.choice(LOOKALIKES[chars[i]])
            ops.append("lookalike")
        elif r < 0.7 and len(body) > 2:
            del chars[rng.choice(body)]
            ops.append("drop")
        elif r < 0.85 or not brackets:
            i = rng.choice(body or range(len(chars)))
            chars.insert(i, chars[i])
            ops.append("double")
        else:
            del chars[rng.choice(brackets)]
            ops.append("drop_bracket")
    if rng.random() < 0.3:
        swappable = [i for i, c in enumerate(chars) if c in _WIDTH]
        for i in rng.sample(swappable, k=min(len(swappable), rng.randint(1, 3))):
            chars[i] = _WIDTH[chars[i]]
        ops.append("width")
    if rng.random() < 0.3 and len(chars) > 2:
        for _ in range(rng.randint(1, 2)):
            chars.insert(rng.randrange(1, len(chars)), " ")
        ops.append("space")
    return "".join(chars), ops


_SPECS = ("0.25g×24粒", "10mg*28片/盒", "100ml", "0.5g/支", "2ml:4mg×5支", "5mg x 30片")
_QUALIFIERS = ("(进口)", "（国产）", "(甲类)", "[乙]", "(集采)")


def bill_style(name: str, rng: random.Random) -> tuple[str, list[str]]:
    """As a bill prints it: qualifier and/or pack spec around the name, then an OCR misread."""
    text, ops = corrupt(name, rng)
    if rng.random() < 0.5:
        text, ops = text + rng.choice(_QUALIFIERS), ops + ["qualifier"]
    if rng.random() < 0.7 or "qualifier" not in ops:
        text, ops = text + rng.choice(("", " ", "  ")) + rng.choice(_SPECS), ops + ["spec"]
    return text, ops


def split_of(name: str) -> tuple[str, bool]:
    """("dev" | "test", indexed?) from md5 of the name: fixed, independent of the code."""
    h = hashlib.md5(name.encode("utf-8")).hexdigest()
    return ("dev" if h[0] in "01234567" else "test"), h[1] != "f"


def load(catalog_dir: Path = CATALOG_DIR, **kw) -> Catalogue:
    cats = [Catalogue.from_csv(catalog_dir / f, cols, **kw) for f, cols in SOURCES]
    out = cats[0]
    for c in cats[1:]:
        out = out + c
    return out


@dataclass
class Query:
    text: str
    truth_code: str | None  # None: out-of-catalogue
    truth_key: str
    ops: tuple[str, ...]


def build_queries(full: Catalogue, seed: int, variants: int, style: str = "ocr") -> dict[str, list[Query]]:
    """Queries per split; every name gets ``variants`` corrupted copies (seeded per name)."""
    out: dict[str, list[Query]] = {"dev": [], "test": []}
    gen = corrupt if style == "ocr" else bill_style
    codes: dict[str, str] = {}
    for e in full.entries:
        codes.setdefault(e.name, e.code)
    indexed_codes = {e.code for e in full.entries if split_of(e.name)[1]}
    for name in sorted(codes):
        split, indexed = split_of(name)
        # a held-out name whose code is still indexed under another name (a synonym) is in the catalogue
        code = codes[name] if indexed or codes[name] in indexed_codes else None
        seed_int = int(hashlib.md5(f"{seed}:{style}:{name}".encode()).hexdigest()[:12], 16)
        rng = random.Random(seed_int)
        for _ in range(variants):
            text, ops = gen(name, rng)
            out[split].append(Query(text, code, normalise_name(name), tuple(ops)))
    return out


@dataclass
class Scored:
    best: np.ndarray  # best candidate's score per query
    lead: np.ndarray  # its lead over the best rival (another code and name)
    correct: np.ndarray  # the best candidate is right
    seconds: float  # spent in search()


def score_queries(index: Catalogue, queries: list[Query]) -> Scored:
    n = len(queries)
    best, lead, correct = np.zeros(n), np.zeros(n), np.zeros(n, bool)
    start = time.perf_counter()
    found = [index.search(q.text, top_k=10) for q in queries]
    elapsed = time.perf_counter() - start
    for i, (q, f) in enumerate(zip(queries, found)):
        if f:
            best[i], lead[i] = f[0].score, index.lead(f)
            top = index.entry_for(f[0])
            correct[i] = q.truth_code is not None and (top.code == q.truth_code or top.key == q.truth_key)
    return Scored(best, lead, correct, elapsed)


def accepted(s: Scored, threshold: float, floor: float, margin: float) -> np.ndarray:
    return (s.best >= threshold) | ((s.best >= min(floor, threshold)) & (s.lead >= margin))


def metrics(queries: list[Query], s: Scored, params: tuple[float, float, float]) -> dict:
    pos = np.array([q.truth_code is not None for q in queries])
    ok = accepted(s, *params)
    out = {
        "names_in_catalogue": int(pos.sum()),
        "top1_accuracy": round(float((s.correct & ok)[pos].mean()), 4),
        "top1_accuracy_no_threshold": round(float(s.correct[pos].mean()), 4),
        "unmatched_rate": round(float((~ok)[pos].mean()), 4),
        "wrong_match_rate": round(float((ok & ~s.correct)[pos].mean()), 4),
        "out_of_catalogue": int((~pos).sum()),
        "out_of_catalogue_false_match_rate": round(float(ok[~pos].mean()), 4) if (~pos).any() else None,
    }
    by_kind: dict[str, list[bool]] = {}
    for q, c, a, p in zip(queries, s.correct, ok, pos):
        if p:
            hard = [o for o in q.ops if o in ("lookalike", "drop", "double", "drop_bracket")]
            by_kind.setdefault("+".join(sorted(hard)), []).append(bool(c and a))
    out["top1_by_misread"] = {k: [round(float(np.mean(v)), 4), len(v)] for k, v in sorted(by_kind.items())}
    return out


MIN_DEV_ACCURACY = 0.965  # the issue asks for 0.95 on test; 1.5 points of headroom for dev → test


def tune(queries: list[Query], s: Scored) -> tuple[tuple[float, float, float], float, float]:
    """On dev only: the acceptance (threshold, floor, margin) that turns away the most out-of-catalogue
    names while keeping in-catalogue top-1 accuracy ≥ MIN_DEV_ACCURACY. Returns (params, acc, fmr)."""
    pos = np.array([q.truth_code is not None for q in queries])
    best = None
    for t in np.arange(66.0, 92.0, 2.0):
        for f in np.arange(56.0, t + 1, 2.0):
            for m in (5.0, 10.0, 15.0, 20.0):
                ok = accepted(s, t, f, m)
                acc = float((s.correct & ok)[pos].mean())
                fmr = float(ok[~pos].mean()) if (~pos).any() else 0.0
                if acc >= MIN_DEV_ACCURACY and (best is None or (fmr, -acc) < (best[2], -best[1])):
                    best = ((float(t), float(f), m), acc, fmr)
    return best if best is not None else ((0.0, 0.0, 0.0), 0.0, 1.0)


def run(catalog_dir: Path = CATALOG_DIR, seed: int = 0, variants: int = 3,
        styles: tuple[str, ...] = ("ocr", "bill"), splits: tuple[str, ...] = ("dev", "test"),
        weights: tuple[float, ...] = ()) -> dict:
    """Scores every split and style at the product's defaults; tunes on OCR "dev" when it is scored.
    ``weights``: extra ratio/partial blends to try during tuning (dev only)."""
    t0 = time.perf_counter()
    full = load(catalog_dir)
    index = Catalogue([e for e in full.entries if split_of(e.name)[1]])
    build_s = time.perf_counter() - t0
    params = (index.threshold, index.floor, index.margin)
    result: dict = {
        "data": f"{catalog_dir} ({', '.join(f for f, _ in SOURCES)})",
        "catalogue_entries": len(full), "indexed_entries": len(index),
        "distinct_names": len({e.name for e in full.entries}),
        "entries_sharing_a_normalised_name": len(full.entries) - len({e.key for e in full.entries}),
        "seed": seed, "variants_per_name": variants,
        "defaults": {"threshold": params[0], "floor": params[1], "margin": params[2],
                     "ratio_weight": catmod.RATIO_WEIGHT},
        "index_build_s": round(build_s, 3),
    }
    total_q, total_s = 0, 0.0
    for style in styles:
        queries = build_queries(full, seed, variants, style)
        out: dict = {}
        for split in splits:
            scored = score_queries(index, queries[split])
            total_q, total_s = total_q + len(queries[split]), total_s + scored.seconds
            out[split] = metrics(queries[split], scored, params)
            if split == "dev" and style == "ocr":
                tuning = {}
                default_w = catmod.RATIO_WEIGHT
                for w in dict.fromkeys((default_w, *weights)):
                    catmod.RATIO_WEIGHT = w
                    s = scored if w == default_w else score_queries(index, queries[split])
                    (t, f, m), acc, fmr = tune(queries[split], s)
                    tuning[str(w)] = {"threshold": t, "floor": f, "margin": m, "dev_accuracy": round(acc, 4),
                                      "dev_out_of_catalogue_false_match_rate": round(fmr, 4)}
                catmod.RATIO_WEIGHT = default_w
                result["tuned_on_dev"] = {"min_dev_accuracy": MIN_DEV_ACCURACY, "by_ratio_weight": tuning}
        out["examples"] = [[q.text, q.truth_key] for q in queries[splits[-1]][:: max(1, len(queries[splits[-1]]) // 5)]]
        result[style] = out
    result["queries"] = total_q
    result["matches_per_s"] = round(total_q / total_s, 1) if total_s else None
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--catalog", type=Path, default=CATALOG_DIR)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--variants", type=int, default=3)
    ap.add_argument("--weights", type=float, nargs="*", default=[1.0, 0.9, 0.75],
                    help="ratio/partial blends to try when tuning on dev")
    args = ap.parse_args()
    if not args.catalog.is_dir():
        sys.exit(f"example catalogue not found at {args.catalog} (it lives in ../shared/data/catalog)")
    print(json.dumps(run(args.catalog, args.seed, args.variants, weights=tuple(args.weights)),
                     ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
