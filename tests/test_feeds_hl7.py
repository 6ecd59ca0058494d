"""HL7 v2 parsing (feeds.hl7v2), ACKs, file splitting and the feed graph plan: pure functions, plus a hypothesis
fuzz of the parser (10,000+ generated messages: anything but a FeedMessage or a FeedError is a bug)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from feeds.hl7v2 import FeedError, FeedMessage, ack, decode, header, parse
from feeds.mllp import message_encoding, read_ack, split_messages
from graph.feed_rows import plan

SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "hl7"


def msg(*segments: str) -> bytes:
    return "\r".join(segments).encode("utf-8")


MSH = "MSH|^~\\&|HIS|H1|MEDKG|M|{ts}||{type}|{ctrl}|P|2.5"
PID = "PID|1||P1^^^H1^MR||测试^甲||19700102|F"
PV1 = "PV1|1|I|W1^01^1" + "|" * 16 + "V1"


def test_samples_parse_to_what_the_graph_needs():
    found = {}
    for f in sorted(SAMPLES.glob("*.hl7")):
        for raw in split_messages(f.read_bytes()):
            m = parse(raw, message_encoding(raw, "utf-8"))
            found[m.type.split("^")[0] + "^" + m.type.split("^")[1]] = m
    assert set(found) >= {"ADT^A01", "ADT^A02", "ADT^A03", "ADT^A04", "ADT^A08", "ORU^R01", "MDM^T02", "DFT^P03"}
    admit = dict(found["ADT^A01"].ops)["encounter"]
    assert admit["status"] == "admitted" and admit["eid"] == "DEMO-V001" and admit["admitted_at"].endswith("Z")
    labs = [r for op, r in found["ORU^R01"].ops if op == "lab"]
    assert {(r["name"], r["value_num"], r["unit"], r["ref_range"], r["abnormal"]) for r in labs} >= {
        ("白细胞计数", 12.5, "10*9/L", "3.5-9.5", "H")}
    assert found["ORU^R01"].documents and "肌钙蛋白" in found["ORU^R01"].documents[0].text
    assert "胸痛" in found["MDM^T02"].documents[0].text and found["MDM^T02"].documents[0].encounter_id == "DEMO-V001"
    assert sum(r["amount"] for op, r in found["DFT^P03"].ops if op == "charge") == pytest.approx(90.6)


def test_gb18030_and_newline_separators():
    text = "\n".join([MSH.format(ts="20260101120000", type="MDM^T02", ctrl="C1"), PID, PV1,
                      "TXA|1|PN|TX|20260101||||||||DOC1", "OBX|1|TX|N||咳嗽三天，否认发热。"])
    m = parse(text.encode("gb18030"), "gb18030")
    assert m.documents[0].text == "咳嗽三天，否认发热。" and m.patient_id == "P1"
    with pytest.raises(FeedError) as e:
        parse(text.encode("gb18030"), "utf-8")
    assert e.value.code == "AR" and "utf-8" in e.value.reason


def test_cancellations_and_versions():
    a11 = parse(msg(MSH.format(ts="20260101130000", type="ADT^A11", ctrl="C2"), PID, PV1))
    enc = dict(a11.ops)["encounter"]
    assert enc["status"] == "cancelled" and "admitted_at" in enc and enc["admitted_at"] is None
    a13 = parse(msg(MSH.format(ts="20260101140000", type="ADT^A13", ctrl="C3"), PID, PV1))
    assert dict(a13.ops)["encounter"]["discharged_at"] is None
    assert a11.version < a13.version  # fixed-width UTC time, then the control id
    tz = parse(msg(MSH.format(ts="20260101210000+0800", type="ADT^A08", ctrl="C4"), PID, PV1))
    assert tz.version.startswith("2026-01-01T13:00:00.000000Z")


@pytest.mark.parametrize("raw, code, words", [
    (b"", "AR", "MSH"),
    (b"PID|1||x", "AR", "MSH"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01||P|2.5", "AR", "control id"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A99|X|P|2.5\rPID|1||P", "AR", "not supported"),
    (b"MSH|^~\\&|A|B|C|D|||ADT^A01|X|P|2.5\rPID|1||P\rPV1|1", "AE", "MSH-7"),
    (b"MSH|^~\\&|A|B|C|D|2026XX||ADT^A01|X|P|2.5\rPID|1||P", "AE", "DTM"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X|P|2.5\rPV1|1", "AE", "PID"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X|P|2.5\rPID|1||P", "AE", "PV1"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X|P|2.5\rpid|1||P", "AE", "segment"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ORU^R01|X|P|2.5\rPID|1||P", "AE", "OBX"),
    (b"MSH|^~\\&|A|B|C|D|20260101||DFT^P03|X|P|2.5\rPID|1||P\rFT1|1|T||||CG|X^Y||||abc", "AE", "amount"),
    (b"MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X|P|2.5\xff", "AR", "utf-8"),
    (b"MSHX^~\\&|A", "AR", "separator"),
])
def test_bad_messages_get_a_reason(raw, code, words):
    with pytest.raises(FeedError) as e:
        parse(raw)
    assert e.value.code == code and words.lower() in e.value.reason.lower()


def test_ack_names_the_message_and_cannot_be_broken_by_the_reason():
    h = header(decode(msg(MSH.format(ts="20260101120000", type="ADT^A01", ctrl="C9"), PID)))
    text = ack(h, "AE", "bad|field^with\rseparators")
    a = read_ack(text.encode())
    assert (a.code, a.control_id) == ("AE", "C9") and "\r" not in a.text and "|" not in a.text
    assert text.split("\r")[0].split("|")[8] == "ACK^A01^ACK"


def test_split_messages_handles_framing_and_separators():
    one = MSH.format(ts="20260101", type="ADT^A08", ctrl="A") + "\n" + PID + "\n"
    two = "\x0b" + MSH.format(ts="20260101", type="ADT^A08", ctrl="B") + "\r\n" + PID + "\x1c\r"
    parts = split_messages((one + "\n" + two).encode())
    assert [parse(p).control_id for p in parts] == ["A", "B"]


def test_plan_keeps_the_newest_version_per_field():
    old = ("encounter", {"eid": "E", "pid": "P", "v": "2026-01-01T00:00:00.000000Z|a", "ward": "old"})
    new = ("encounter", {"eid": "E", "pid": "P", "v": "2026-01-02T00:00:00.000000Z|b", "ward": "new"})
    stmts = plan([new, old])
    ward = next(rows for q, rows in stmts if "n.ward =" in q)
    assert ward == [{"key": "E", "value": "new", "v": "2026-01-02T00:00:00.000000Z|b"}]
    assert all("$rows" in q or "$ids" in q for q, _ in stmts)  # values only as parameters


# --- fuzz -------------------------------------------------------------------------------------------------
_SEGS = ["PID|1||P{n}^^^H^MR||名^姓||19800101|M", "PV1|1|I|W^1^2" + "|" * 16 + "V{n}", "EVN|A01|20260101",
         "OBR|1|O{n}|F{n}|CBC^血常规", "OBX|1|NM|WBC^白细胞||{n}.5|g/L|1-9|H|||F", "OBX|2|TX|N||文本{n}",
         "TXA|1|PN|TX|20260101||||||||D{n}", "FT1|1|T{n}||20260101||CG|C^项目|||1|{n}.0|1", "NTE|1||注释"]
_TYPES = ["ADT^A01", "ADT^A02", "ADT^A03", "ADT^A04", "ADT^A08", "ADT^A11", "ADT^A13", "ORU^R01", "MDM^T02",
          "DFT^P03", "ADT^A99", "ACK", "XYZ^Q01", ""]

structured = st.builds(
    lambda t, ctrl, ts, segs, n, sep: sep.join(
        [f"MSH|^~\\&|HIS|H|MEDKG|M|{ts}||{t}|{ctrl}|P|2.5"] + [s.format(n=n) for s in segs]),
    st.sampled_from(_TYPES), st.text(alphabet="ABC123-|^\\&~", max_size=8),
    st.sampled_from(["20260101120000", "2026", "", "20261399", "20260101120000.1234+0800", "x"]),
    st.lists(st.sampled_from(_SEGS), max_size=8), st.integers(0, 99), st.sampled_from(["\r", "\n", "\r\n"]))


def _mutate(text: str, data) -> bytes:
    raw = bytearray(text.encode(data.draw(st.sampled_from(["utf-8", "gb18030"]))))
    for _ in range(data.draw(st.integers(0, 4))):
        if not raw:
            break
        i = data.draw(st.integers(0, len(raw) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "dup", "insert"]))
        if op == "flip":
            raw[i] = data.draw(st.integers(0, 255))
        elif op == "cut":
            del raw[i:i + data.draw(st.integers(1, 20))]
        elif op == "dup":
            raw[i:i] = raw[i:i + 30]
        else:
            raw[i:i] = data.draw(st.sampled_from([b"|", b"^", b"~", b"\\", b"&", b"\r", b"\x00", b"\x0b", b"\x1c",
                                                  b"MSH|", "中".encode(), b"\xff"]))
    return bytes(raw)


def _check(raw: bytes, encoding: str) -> None:
    try:
        m = parse(raw, encoding)
    except FeedError as e:
        assert e.code in ("AR", "AE") and e.reason
        a = read_ack(ack(None, e.code, e.reason, e.control_id).encode())
        assert a.code == e.code
        return
    assert isinstance(m, FeedMessage) and m.control_id and m.version
    plan(m.ops)  # whatever parsed can be planned for the graph


@settings(max_examples=6000, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(structured, st.data())
def test_fuzz_structured_messages(text, data):
    _check(_mutate(text, data), data.draw(st.sampled_from(["utf-8", "gb18030"])))


@settings(max_examples=4500, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=200).map(lambda t: ("MSH|^~\\&|" + t).encode())))
def test_fuzz_arbitrary_bytes(raw):
    _check(raw, "utf-8")
