"""Teencode/abbreviation expansion and unaccented-text detection."""

from __future__ import annotations

from nlp.normalize_vi import expand_teencode, is_unaccented, load_teencode, prepare_for_model


def test_table_loads_and_has_no_ambiguous_single_letters() -> None:
    table = load_teencode()
    assert len(table) > 100
    assert table["ko"] == "không" and table["đc"] == "được" and table["dc"] == "được"
    assert not [k for k in table if len(k) == 1]  # "k", "m", "h"… are ambiguous: left out


def test_expansion_is_whole_word_and_keeps_capitals() -> None:
    assert expand_teencode("ko dc đâu") == "không được đâu"
    assert expand_teencode("Ko ai xử lý, UBND phường ntn vậy?") == \
        "Không ai xử lý, ủy ban nhân dân phường như thế nào vậy?"
    assert expand_teencode("kokoro dcx") == "kokoro dcx"  # parts of words are never touched
    assert expand_teencode("Giá 5k một ly") == "Giá 5k một ly"


def test_prepare_for_model_normalises_then_expands() -> None:
    assert prepare_for_model("  Nguoi dan ko  bít\u00a0gì ") == "Nguoi dan không biết gì"
    assert prepare_for_model("hoà bình ko", teencode=False) == "hòa bình ko"


def test_unaccented_detection() -> None:
    assert is_unaccented("duong nguyen huu canh ngap sau qua")
    assert not is_unaccented("đường Nguyễn Hữu Cảnh ngập sâu quá")
    assert not is_unaccented("ok")  # too short to tell
    # emoji, quotes and dashes are not tone marks; a long accented text takes the fast path
    assert is_unaccented("ok 😀😀😀 ngap nuoc qua troi luon")
    assert is_unaccented("ngap nuoc – “qua” troi … o Q.7 🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣🤣")
    assert not is_unaccented("Người dân phản ánh đường ngập nước sau mưa lớn. " * 20)
    assert not is_unaccented("Café ở đâu vậy các bạn ơi")
