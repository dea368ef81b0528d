"""Chapter 1 helpers: encoding sizes, character breakdown, invalid UTF-8 enumeration."""

import codecs

import pytest

from lmbasics.book.unicode import (
    describe_chars,
    encoded_sizes,
    is_valid_utf8,
    undecodable_sequences,
    utf8_bits,
    utf8_layout,
)


def test_encoded_sizes_count_bytes_per_character_class():
    # ASCII: 1 byte in UTF-8; 'é' 2; '中' 3; an emoji (outside the BMP) 4, and a UTF-16 surrogate pair.
    assert encoded_sizes("a") == {"utf-8": 1, "utf-16-le": 2, "utf-32-le": 4}
    assert encoded_sizes("é") == {"utf-8": 2, "utf-16-le": 2, "utf-32-le": 4}
    assert encoded_sizes("中") == {"utf-8": 3, "utf-16-le": 2, "utf-32-le": 4}
    assert encoded_sizes("😀") == {"utf-8": 4, "utf-16-le": 4, "utf-32-le": 4}


def test_encoded_sizes_carry_no_byte_order_mark():
    text = "héllo"
    assert encoded_sizes(text)["utf-16-le"] == len(text.encode("utf-16")) - len(codecs.BOM_UTF16)


def test_describe_chars_reports_code_points_names_and_bytes():
    infos = describe_chars("aé\x00")
    assert [i.code_point for i in infos] == ["U+0061", "U+00E9", "U+0000"]
    assert infos[1].name == "LATIN SMALL LETTER E WITH ACUTE"
    assert infos[1].utf8_hex == "c3 a9"
    assert infos[2].category == "Cc"
    assert infos[2].name == "<control '\\x00'>"


def test_undecodable_single_bytes_are_exactly_the_non_ascii_ones():
    # A lone byte is valid UTF-8 only if it is ASCII (0x00-0x7f).
    assert undecodable_sequences(1) == [bytes([b]) for b in range(0x80, 0x100)]


def test_undecodable_pairs_match_a_direct_check():
    bad = set(undecodable_sequences(2))
    assert b"\xc3\x28" in bad  # lead byte of a 2-byte character followed by ASCII '('
    assert b"\xc3\xa9" not in bad  # 'é'
    assert all(not is_valid_utf8(seq) for seq in bad)
    # Valid pairs: ASCII+ASCII (128*128) plus lead bytes c2..df followed by a continuation (30*64).
    assert 256 * 256 - len(bad) == 128 * 128 + 30 * 64


def test_undecodable_sequences_refuses_long_enumerations():
    with pytest.raises(ValueError, match="length must be 1 or 2"):
        undecodable_sequences(3)


def test_utf16_units_use_a_surrogate_pair_above_the_bmp():
    infos = describe_chars("é😀")
    assert infos[0].utf16_units == (0x00E9,)
    high, low = infos[1].utf16_units
    # The pair carries code point - 0x10000 as 10 high bits and 10 low bits.
    assert 0xD800 <= high < 0xDC00 <= low < 0xE000
    assert 0x10000 + ((high - 0xD800) << 10 | (low - 0xDC00)) == ord("😀")
    assert infos[1].utf16_hex == "d83d de00"


@pytest.mark.parametrize(
    "ch", ["\x00", "A", "\x7f", "\x80", "é", "\u07ff", "\u0800", "中", "\uffff", "\U00010000", "😀", "\U0010ffff"]
)
def test_utf8_bits_rebuild_the_codec_bytes(ch):
    bits = utf8_bits(ch)
    assert bits.bytes == ch.encode("utf-8")
    assert int("".join(bits.payloads), 2) == ord(ch)
    assert bits.markers[1:] == ("10",) * (len(bits.markers) - 1)  # continuation bytes are 10xxxxxx
    assert all(len(m) + len(p) == 8 for m, p in zip(bits.markers, bits.payloads))


def test_utf8_bits_rejects_surrogates_and_strings():
    with pytest.raises(ValueError, match="surrogate"):
        utf8_bits("\ud800")
    with pytest.raises(ValueError, match="one character"):
        utf8_bits("ab")


def test_utf8_layout_renders_text_and_html():
    layout = utf8_layout("Aé")
    text = repr(layout).splitlines()
    assert len(text) == 3
    assert text[2].split() == ["é", "U+00E9", "00011", "101001", "c3", "a9", "110|00011", "10|101001"]
    html = layout._repr_html_()
    assert html.count("<tr>") == 3 and "0xc3" in html and "0xa9" in html
