"""De-duplication: exact and near-duplicate texts, and syndication grouping into stories.

* URL variants (tracking parameters, AMP and mobile editions) are folded by
  `crawlers.urls.canonicalize_url` before anything else, so one article has one id.
* Exact duplicates: the SHA-1 of the folded, whitespace-collapsed body (`content_hash`).
* Near duplicates: a 64-bit SimHash over 3-word shingles of the folded body (`simhash`); two texts
  whose SimHashes differ in few bits share most shingles. Candidates are found through six bit-bands
  stored in ``crawl_stories`` (any pair within 5 bits shares a band).
* Stories: the same text in several sources (a TTXVN dispatch republished by five papers) is one
  story with several sources. `StoryIndex.assign` gives each mention a ``story_id`` (the id of the
  first mention of the story); the same text twice in one source is a duplicate and is not stored.

Rankings can then count stories (distinct story ids) and reach (mentions) separately.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from crawlers.state import CrawlState, StoryRow, bands
from nlp.text import fold

SHINGLE_WORDS = 3
NEAR_DUPLICATE_BITS = 3  # same source, this close: the same article at another URL
SAME_STORY_BITS = 7  # other sources, this close: the same story republished (6-7 found via bands w.h.p.)
MIN_WORDS_FOR_NEAR = 40  # shorter texts are compared exactly only (templates look alike)
STORY_WINDOW = timedelta(days=7)
_WORD = re.compile(r"\w+")


def text_words(text: str) -> list[str]:
    """Folded word tokens (case, tone marks and đ folded: 'Ngập' → 'ngap')."""
    return _WORD.findall(fold(text))


def content_hash(text: str, tokens: list[str] | None = None) -> str:
    """SHA-1 of the folded word sequence: equal for texts that differ only in case, accents lost
    in transit, punctuation or whitespace."""
    words = text_words(text) if tokens is None else tokens
    return hashlib.sha1(" ".join(words).encode("utf-8")).hexdigest()


def simhash(text: str, shingle: int = SHINGLE_WORDS, tokens: list[str] | None = None) -> int:
    """64-bit SimHash of the text's folded word shingles (0 for an empty text)."""
    tokens = text_words(text) if tokens is None else tokens
    if not tokens:
        return 0
    if len(tokens) < shingle:
        grams = [" ".join(tokens)]
    else:
        grams = [" ".join(tokens[i:i + shingle]) for i in range(len(tokens) - shingle + 1)]
    digests = b"".join(hashlib.blake2b(g.encode("utf-8"), digest_size=8).digest() for g in set(grams))
    bits = np.unpackbits(np.frombuffer(digests, dtype=np.uint8)).reshape(-1, 64)
    votes = bits.sum(axis=0, dtype=np.int64) * 2 - bits.shape[0]
    value = 0
    for bit in np.flatnonzero(votes > 0):
        value |= 1 << (63 - int(bit))
    return value


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two 64-bit hashes."""
    return (a ^ b).bit_count()


@dataclass
class Assignment:
    """Where a mention's text belongs."""

    story_id: str
    kind: str  # new | same (already known, text unchanged) | syndicated | duplicate
    duplicate_of: str | None = None  # for duplicates: the stored mention with the same text
    distance: int = 0

    @property
    def is_duplicate(self) -> bool:
        return self.kind == "duplicate"


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _close_in_time(a: datetime | None, b: str | None) -> bool:
    other = _parse(b)
    return a is None or other is None or abs(a - other) <= STORY_WINDOW


class StoryIndex:
    """Assigns story ids and spots duplicates, backed by ``crawl_stories`` of a `CrawlState`."""

    def __init__(self, state: CrawlState) -> None:
        self.state = state
        self._pending: dict[str, StoryRow] = {}  # assigned, not yet written (batch)

    def _candidates_hash(self, digest: str) -> list[StoryRow]:
        rows = self.state.by_content_hash(digest)
        rows += [r for r in self._pending.values() if r.content_hash == digest]
        return rows

    def _candidates_sim(self, value: int) -> list[StoryRow]:
        rows = self.state.simhash_candidates(value)
        mine = bands(value)
        rows += [r for r in self._pending.values() if any(a == b for a, b in zip(mine, bands(r.simhash), strict=True))]
        return rows

    def assign(self, mention_id: str, source: str, text: str, published_at: datetime | None = None) -> Assignment:
        """The story of one mention (recorded on `flush`; a duplicate is not recorded)."""
        tokens = text_words(text)
        digest = content_hash(text, tokens)
        known = self._pending.get(mention_id) or self.state.story(mention_id)
        if known is not None and known.content_hash == digest:
            return Assignment(known.story_id, "same")
        value = simhash(text, tokens=tokens)
        n_words = len(tokens)
        best: tuple[int, StoryRow] | None = None
        for row in self._candidates_hash(digest):
            if row.mention_id != mention_id and _close_in_time(published_at, row.published_at):
                best = (0, row)
                if row.source == source:
                    break
        if best is None or best[1].source != source:
            for row in self._candidates_sim(value):
                if row.mention_id == mention_id or not _close_in_time(published_at, row.published_at):
                    continue
                dist = hamming(value, row.simhash)
                same_source = row.source == source
                limit = NEAR_DUPLICATE_BITS if same_source else SAME_STORY_BITS
                if same_source and n_words < MIN_WORDS_FOR_NEAR:
                    continue
                if dist <= limit and (best is None or (dist, not same_source) < (best[0], best[1].source != source)):
                    best = (dist, row)
        if (best is not None and best[1].source == source and (best[0] == 0 or n_words >= MIN_WORDS_FOR_NEAR)
                and best[0] <= NEAR_DUPLICATE_BITS):
            return Assignment(best[1].story_id, "duplicate", best[1].mention_id, best[0])
        story_id = best[1].story_id if best is not None else (known.story_id if known else mention_id)
        kind = "syndicated" if best is not None else "new"
        self._pending[mention_id] = StoryRow(mention_id, story_id, source, digest, value,
                                             published_at.isoformat() if published_at else None)
        return Assignment(story_id, kind, None, best[0] if best else 0)

    def flush(self) -> None:
        """Write the assignments made since the last flush."""
        if self._pending:
            self.state.record_stories(list(self._pending.values()))
            self._pending.clear()


def story_sources(state: CrawlState, story_id: str) -> list[str]:
    """The distinct sources that carried a story, first publisher first."""
    out: list[str] = []
    for row in state.story_members(story_id):
        if row.source not in out:
            out.append(row.source)
    return out
