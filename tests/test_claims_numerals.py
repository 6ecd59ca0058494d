"""Chinese financial numerals and figure amounts → Decimal."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims.numerals import AmountError, NumeralError, parse_amount, parse_chinese_integer, parse_financial
from ocr.synth import amount_in_words


@pytest.mark.parametrize("text, value", [
    ("壹仟贰佰叁拾肆元伍角陆分", "1234.56"),
    ("壹拾贰万零叁拾肆元伍角", "120034.50"),
    ("壹仟零壹元零壹分", "1001.01"),
    ("零元整", "0.00"),
    ("伍角", "0.50"),
    ("捌分", "0.08"),
    ("拾元整", "10.00"),
    ("壹佰元正", "100.00"),
    ("壹元伍角整", "1.50"),
    ("人民币：壹佰元整", "100.00"),
    ("壹 佰 元 整", "100.00"),  # OCR spaces
    ("貳拾陸萬元整", "260000.00"),  # traditional forms
    ("贰圆", "2.00"),
    ("一百二十三元五角", "123.50"),  # plain numerals
    ("两千零五元", "2005.00"),
    ("壹亿零伍佰万元整", "105000000.00"),
    ("壹万亿零伍佰万元整", "1000005000000.00"),
])
def test_financial_numerals(text, value):
    assert parse_financial(text) == Decimal(value)


@pytest.mark.parametrize("text, position", [
    ("壹贰元", 1),  # two digits without a unit
    ("零拾元", 1),  # 零 right before a unit
    ("壹佰伍元", 2),  # 105 or 150? refuse
    ("壹万伍元", 2),
    ("壹拾佰元", 2),  # units out of order
    ("参拾元", 0),  # a look-alike, not a numeral: the repair step handles it
    ("壹佰元整伍角", 4),  # text after 整
    ("壹佰元零", 3),
    ("伍", 0),  # no 元/角/分
    ("壹元壹元", 3),
])
def test_malformed_numerals_raise_with_position(text, position):
    with pytest.raises(NumeralError) as err:
        parse_financial(text)
    assert isinstance(err.value, ValueError)
    assert err.value.position == position and err.value.text == text


def test_positions_refer_to_the_original_text():
    with pytest.raises(NumeralError) as err:
        parse_financial("壹 贰元")
    assert err.value.position == 2


def test_chinese_integers():
    assert parse_chinese_integer("十五") == 15
    assert parse_chinese_integer("两百") == 200
    assert parse_chinese_integer("壹万零叁拾") == 10030
    assert parse_chinese_integer("零") == 0


@settings(max_examples=3000, deadline=None)
@given(st.integers(min_value=1, max_value=99_999_999_999))
def test_round_trip_with_the_renderer(cents):
    amount = Decimal(cents) / 100
    assert parse_financial(amount_in_words(amount)) == amount


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=0, max_value=11), st.integers(min_value=1, max_value=9))
def test_round_trip_on_round_amounts(zeros, digit):
    amount = Decimal(digit) * Decimal(10) ** zeros / 100  # 0.01 … 9,000,000,000.00: runs of 零
    assert parse_financial(amount_in_words(amount)) == amount


@pytest.mark.parametrize("text, value", [
    ("¥1,234.56", "1234.56"),
    ("￥1234.5", "1234.5"),
    ("１２３４．５６", "1234.56"),
    ("1 234.56", "1234.56"),
    ("12.50元", "12.50"),
    ("-3.00", "-3.00"),
    ("¥-3.00", "-3.00"),
    ("1,234,567.8", "1234567.8"),
    ("0", "0"),
])
def test_figures(text, value):
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text, position", [("12,34.5", 2), ("12O.00", 2), ("123。45", 3), ("", -1), ("¥", 0)])
def test_bad_figures_raise_with_position(text, position):
    with pytest.raises(AmountError) as err:
        parse_amount(text)
    assert isinstance(err.value, ValueError) and err.value.position == position
