"""Normalisation of informal Vietnamese for the classifiers: teencode, abbreviations, missing tone marks.

* :func:`expand_teencode` — whole-word replacement from the committed list ``nlp/data/teencode.txt``
  ("ko" → "không", "đc" → "được", "ubnd" → "ủy ban nhân dân"); a word written with a capital keeps
  it, ambiguous forms are not in the list (see its header).
* :func:`is_unaccented` — whether a text is written without tone marks (then the models lean on
  the folded features; see :mod:`nlp.classifiers`).
* :func:`prepare_for_model` — :func:`nlp.text.normalize` (NFC, one tone convention) then the
  teencode expansion: the text the heads read.

Locations are resolved on the original text, never on this one (character offsets must hold).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from nlp.text import normalize

TEENCODE_PATH = Path(__file__).resolve().parent / "data" / "teencode.txt"
_WORD = re.compile(r"\w+", re.UNICODE)


@lru_cache(maxsize=1)
def load_teencode(path: Path = TEENCODE_PATH) -> dict[str, str]:
    """The teencode table: lower-case short form → expansion."""
    table: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise ValueError(f"{path}:{lineno}: expected 'short<TAB>expansion'")
        table[normalize(parts[0]).lower()] = normalize(parts[1])
    return table


def expand_teencode(text: str, table: dict[str, str] | None = None) -> str:
    """Replace whole-word chat abbreviations by their standard spelling."""
    table = load_teencode() if table is None else table

    def repl(m: re.Match[str]) -> str:
        word = m.group(0)
        full = table.get(word.lower())
        if full is None:
            return word
        if word[:1].isupper() and not word.isupper() and full[:1].islower():
            return full[:1].upper() + full[1:]
        return full

    return _WORD.sub(repl, text)


_LETTER = re.compile(r"[^\W\d_]")
_MARKED_LETTER = re.compile(r"[^\W\d_a-zA-Z]")
_ASCII_LETTERS = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def is_unaccented(text: str, threshold: float = 0.02) -> bool:
    """True for Vietnamese typed without tone marks/diacritics (few non-ASCII letters)."""
    ascii_bytes = text.encode("ascii", "ignore")
    non_ascii = len(text) - len(ascii_bytes)
    ascii_letters = len(ascii_bytes) - len(ascii_bytes.translate(None, _ASCII_LETTERS))
    if non_ascii == 0:  # fast paths in C: plain ASCII, or clearly accented text
        return ascii_letters >= 8
    astral = len(text.encode("utf-16-le", "surrogatepass")) // 2 - len(text)  # emoji and the like
    marks = non_ascii - astral
    if marks >= 16 and marks > 10 * threshold * (ascii_letters + marks):
        return False  # many non-ASCII characters below U+10000 (a few quotes cannot reach this): accented
    letters = len(_LETTER.findall(text))  # emoji, quotes and dashes are not letters
    if letters < 8:
        return False
    return len(_MARKED_LETTER.findall(text)) / letters < threshold


def prepare_for_model(text: str, teencode: bool = True) -> str:
    """The text the classifier heads read: normalised, abbreviations expanded."""
    text = normalize(text or "")
    return expand_teencode(text) if teencode else text
