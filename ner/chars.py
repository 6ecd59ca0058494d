"""One input piece per character, so every tag lands on exactly one character and offsets never move.

Nearly every hanzi is a SentencePiece/WordPiece of its own; a character is looked up after the
tokenizer's own normaliser (full-width → half-width, …) as ``c`` or ``▁c``; whitespace becomes the
word-boundary piece, anything else ``<unk>``. Because the text is never re-segmented, the i-th position
of the model input *is* the i-th character of the original text: no offset mapping to get wrong.
"""

from __future__ import annotations

import json
from pathlib import Path


def gb2312_chars() -> set[str]:
    """The 7,445 characters of GB 2312 (hanzi of both levels plus its symbols): the common Chinese set."""
    out = set()
    for hi in range(0xA1, 0xF8):
        for lo in range(0xA1, 0xFF):
            try:
                out.add(bytes((hi, lo)).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return out


class CharVocab:
    """``char -> input id`` with the special ids the encoder expects."""

    def __init__(self, ids: dict[str, int], cls: int, sep: int, pad: int, unk: int, space: int):
        self.ids, self.cls, self.sep, self.pad, self.unk, self.space = ids, cls, sep, pad, unk, space

    def encode(self, text: str) -> list[int]:
        get, unk, space = self.ids.get, self.unk, self.space
        return [get(c, space if c.isspace() else unk) for c in text]

    @classmethod
    def from_tokenizer(cls, tok, chars: set[str]) -> CharVocab:
        """Look each character up through a Hugging Face fast tokenizer's normaliser and vocabulary."""
        vocab = tok.get_vocab()
        norm = tok.backend_tokenizer.normalizer
        space = vocab.get("▁", tok.unk_token_id)
        ids = {}
        for c in sorted(chars):
            # strip: BERT's normaliser pads every CJK character with spaces ("肺" -> " 肺 ")
            n = (norm.normalize_str(c) if norm is not None else c).strip()
            if not n:
                continue
            for piece in (n, "▁" + n, n.lower(), n[:1], "▁" + n[:1]):
                if piece in vocab:
                    ids[c] = vocab[piece]
                    break
        return cls(ids, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.unk_token_id, space)

    def used_ids(self) -> list[int]:
        """Every embedding row this vocabulary can produce, sorted (what pruning must keep)."""
        return sorted({*self.ids.values(), self.cls, self.sep, self.pad, self.unk, self.space})

    def remapped(self, keep: list[int]) -> CharVocab:
        """The same vocabulary after the embedding matrix was cut to the rows ``keep`` (in that order)."""
        new = {old: i for i, old in enumerate(keep)}
        return CharVocab({c: new[i] for c, i in self.ids.items()}, new[self.cls], new[self.sep], new[self.pad],
                         new[self.unk], new[self.space])

    def to_json(self) -> dict:
        return {"special": {"cls": self.cls, "sep": self.sep, "pad": self.pad, "unk": self.unk,
                            "space": self.space}, "chars": "".join(self.ids), "ids": list(self.ids.values())}

    @classmethod
    def from_json(cls, d: dict) -> CharVocab:
        return cls(dict(zip(d["chars"], d["ids"])), **d["special"])

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CharVocab:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
