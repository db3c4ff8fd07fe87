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


def _fold_char(ch: str) -> str:
    base = "".join(c for c in unicodedata.normalize("NFD", ch) if unicodedata.category(c) != "Mn")
    return base.replace("đ", "d").replace("Đ", "d")


# Precomposed Latin letters (Vietnamese included) → their folded form; combining marks → removed.
_FOLD_TABLE: dict[int, str | None] = {
    cp: _fold_char(chr(cp))
    for cp in (*range(0x00C0, 0x0250), *range(0x1E00, 0x1F00))
    if _fold_char(chr(cp)) != chr(cp)
}
_FOLD_TABLE.update({cp: None for cp in range(0x0300, 0x0370)})


def fold(text: str) -> str:
    """Lower case without tone marks or diacritics, đ→d: 'Ngập nước Thủ Đức' → 'ngap nuoc thu duc'.

    For NFC text the result has one character per input character (offsets carry over)."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    return text.lower().translate(_FOLD_TABLE)


def words(text: str) -> list[str]:
    """Syllables/words of a text, lower case (tone marks kept)."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())
