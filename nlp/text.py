"""Vietnamese text handling: Unicode normalisation, tone-mark placement and accent folding."""

from __future__ import annotations

import re
import unicodedata

_SPACES = re.compile(r"[ \t\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_CONTROL = re.compile(r"[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f\ufeff]")
_WORD = re.compile(r"\w+", re.UNICODE)

# Tone placement in open "oa", "oe", "uy" syllables varies (hoà/hòa, thuý/thúy); what matters for
# matching is that one spelling is chosen. We normalise to the traditional style that the press
# and the official unit names use (Hòa, Thủy): the tone sits on the first vowel. "quý" is not
# touched: there "qu" is the consonant.
_TONES = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}  # huyền, sắc, ngã, hỏi, nặng
_NEW_STYLE = re.compile(r"(?i)(?<![q])(o[àáảãạ]|u[ỳýỷỹỵ]|o[èéẻẽẹ])(?=\W|$)")


def _move_tone(match: re.Match[str]) -> str:
    pair = match.group(0)
    first, second = pair[0], pair[1]
    decomposed = unicodedata.normalize("NFD", second)
    tone = next((c for c in decomposed if c in _TONES), "")
    base = "".join(c for c in decomposed if c not in _TONES)
    return unicodedata.normalize("NFC", first + tone) + unicodedata.normalize("NFC", base)


def normalize(text: str) -> str:
    """NFC, one tone-mark convention, no control characters, tidy whitespace."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL.sub("", text)
    text = _NEW_STYLE.sub(_move_tone, text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    text = "\n".join(line.strip() for line in text.split("\n"))
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def fold(text: str) -> str:
    """Lower case without tone marks or diacritics, đ→d: 'Ngập nước Thủ Đức' → 'ngap nuoc thu duc'."""
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    return text.replace("đ", "d").replace("Đ", "d")


def words(text: str) -> list[str]:
    """Syllables/words of a text, lower case (tone marks kept)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())
