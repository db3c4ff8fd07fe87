"""Vietnamese text handling: normalisation and accent folding."""

import unicodedata

from nlp.text import fold, normalize, words


def test_fold_removes_tone_marks_and_maps_d() -> None:
    assert fold("Ngập nước Thủ Đức") == "ngap nuoc thu duc"
    assert fold("ĐƯỜNG Nguyễn Hữu Cảnh") == "duong nguyen huu canh"


def test_fold_is_one_char_per_nfc_char() -> None:
    text = unicodedata.normalize("NFC", "Quận Bình Thạnh, phường Bến Nghé")
    assert len(fold(text)) == len(text)


def test_normalize_nfc_and_tone_placement() -> None:
    decomposed = unicodedata.normalize("NFD", "hoà bình")
    assert normalize(decomposed) == "hòa bình"
    assert normalize("Thuý") == "Thúy"
    assert normalize("khoẻ") == "khỏe"
    # closed syllables and "qu" keep their tone where it is
    assert normalize("hoàng quý") == "hoàng quý"


def test_normalize_whitespace_and_controls() -> None:
    assert normalize("  a\u00a0\u00a0b\r\n\r\n\r\nc\x00 ") == "a b\n\nc"


def test_words() -> None:
    assert words("Ngập nước, kẹt xe!") == ["ngập", "nước", "kẹt", "xe"]
