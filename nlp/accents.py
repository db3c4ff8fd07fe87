"""Tone-mark restoration for Vietnamese typed without diacritics: 'ngap nuoc o Thu Duc' →
'ngập nước ở Thủ Đức'.

A syllable bigram model counted on accented Vietnamese news (VNTC, MIT) and decoded with Viterbi:
each syllable typed in plain ASCII gets the accented forms seen with the same folded spelling as
candidates, and the likeliest sequence under the bigram counts (stupid backoff to the unigram
counts) wins. Letter case is carried over; punctuation and unknown tokens break the context.

    python -m nlp.accents build [--shared ../shared] [--out nlp/data/accents.npz]
    python -m nlp.accents eval  [--shared ../shared]

The artifact (`nlp/data/accents.npz`: syllables, unigram counts, pruned bigram counts) is committed;
nothing is read from ../shared at run time.
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import math
import re
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from nlp.text import fold, normalize

log = logging.getLogger(__name__)

ARTIFACT = Path(__file__).resolve().parent / "data" / "accents.npz"
_TOKEN = re.compile(r"\w+", re.UNICODE)
_SYLLABLE = re.compile(r"^[^\W\d_]+$", re.UNICODE)
_BREAK = re.compile(r"[^\s]")  # anything but blanks between two words ends the context
START = 0  # id of the sentence start in the vocabulary
BACKOFF = math.log(0.4)


class AccentRestorer:
    """Bigram Viterbi over the accented forms of each plain-ASCII syllable."""

    def __init__(self, vocab: Sequence[str], unigram: npt.NDArray[np.int64],
                 bigram_keys: npt.NDArray[np.uint64], bigram_counts: npt.NDArray[np.int64],
                 max_candidates: int = 6) -> None:
        if len(vocab) != len(unigram) or len(bigram_keys) != len(bigram_counts):
            raise ValueError("accent model arrays do not match")
        self.vocab = list(vocab)
        self.size = len(self.vocab)
        self.unigram = unigram.astype(np.float64)
        self.keys = bigram_keys.astype(np.uint64)
        self.counts = bigram_counts.astype(np.float64)
        self.log_uni = np.log(np.maximum(self.unigram, 0.5) / self.unigram[1:].sum())
        self.index = {w: i for i, w in enumerate(self.vocab)}
        by_fold: dict[str, list[int]] = {}
        for i, word in enumerate(self.vocab[1:], start=1):
            by_fold.setdefault(fold(word), []).append(i)
        self.candidates = {f: np.array(sorted(ids, key=lambda i: -self.unigram[i])[:max_candidates],
                                       dtype=np.int64)
                           for f, ids in by_fold.items()}

    # -- building ------------------------------------------------------------------------------
    @classmethod
    def build(cls, texts: Iterable[str], max_vocab: int = 60_000, min_count: int = 2,
              min_bigram: int = 2) -> AccentRestorer:
        """Count syllables and syllable pairs of accented texts (pairs seen fewer than `min_bigram`
        times are dropped)."""
        uni: Counter[str] = Counter()
        pairs: Counter[tuple[str, str]] = Counter()
        for text in texts:
            for run in _runs(normalize(text).lower()):
                uni.update(run)
                uni["<s>"] += 1
                pairs.update(zip(["<s>", *run[:-1]], run, strict=True))
        starts = uni.pop("<s>", 0)
        vocab = ["<s>"] + [w for w, c in uni.most_common(max_vocab) if c >= min_count]
        index = {w: i for i, w in enumerate(vocab)}
        unigram = np.array([starts] + [uni[w] for w in vocab[1:]], dtype=np.int64)
        keys, counts = [], []
        size = len(vocab)
        for (a, b), c in pairs.items():
            if c >= min_bigram and a in index and b in index:
                keys.append(index[a] * size + index[b])
                counts.append(c)
        order = np.argsort(np.array(keys, dtype=np.uint64))
        return cls(vocab, unigram, np.array(keys, dtype=np.uint64)[order], np.array(counts, dtype=np.int64)[order])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path, vocab=np.array("\n".join(self.vocab)), unigram=self.unigram.astype(np.uint32),
                            keys=self.keys.astype(np.uint32 if self.size ** 2 < 2 ** 32 else np.uint64),
                            counts=np.minimum(self.counts, 65535).astype(np.uint16))

    @classmethod
    def load(cls, path: Path = ARTIFACT) -> AccentRestorer:
        with np.load(path, allow_pickle=False) as z:
            vocab = str(z["vocab"]).split("\n")
            return cls(vocab, z["unigram"].astype(np.int64), z["keys"].astype(np.uint64),
                       z["counts"].astype(np.int64))

    # -- decoding ------------------------------------------------------------------------------
    def _bigram(self, prev: npt.NDArray[np.int64], cur: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
        """log P(cur | prev) for every (prev, cur) pair: shape (len(prev), len(cur))."""
        want = (prev[:, None].astype(np.uint64) * np.uint64(self.size) + cur[None, :].astype(np.uint64))
        pos = np.searchsorted(self.keys, want.ravel()).reshape(want.shape)
        pos_c = np.minimum(pos, len(self.keys) - 1)
        hit = (len(self.keys) > 0) & (self.keys[pos_c] == want)
        seen = np.log(np.where(hit, self.counts[pos_c], 1.0) / self.unigram[prev][:, None])
        return np.where(hit, seen, BACKOFF + self.log_uni[cur][None, :])

    def _decode(self, words: Sequence[str]) -> list[str]:
        """The likeliest accented forms of a run of lower-case syllables (plain ASCII ones change)."""
        lattice: list[npt.NDArray[np.int64]] = []
        for w in words:
            if w.isascii():
                cand = self.candidates.get(w)
                lattice.append(cand if cand is not None and len(cand) else np.array([-1], dtype=np.int64))
            else:
                lattice.append(np.array([self.index.get(w, -1)], dtype=np.int64))
        out: list[str] = []
        start = 0
        while start < len(words):  # a token outside the vocabulary cuts the chain
            end = start
            while end < len(words) and lattice[end][0] >= 0:
                end += 1
            if end > start:
                out.extend(self._viterbi(lattice[start:end]))
            if end < len(words):
                out.append(words[end])
            start = end + 1
        return out

    def _viterbi(self, lattice: Sequence[npt.NDArray[np.int64]]) -> list[str]:
        prev = np.array([START], dtype=np.int64)
        score = np.zeros(1)
        back: list[npt.NDArray[np.int64]] = []
        for cand in lattice:
            total = score[:, None] + self._bigram(prev, cand)
            back.append(total.argmax(axis=0))
            score = total.max(axis=0)
            prev = cand
        best = int(score.argmax())
        ids: list[int] = []
        for cand, ptr in zip(reversed(lattice), reversed(back), strict=True):
            ids.append(int(cand[best]))
            best = int(ptr[best])
        return [self.vocab[i] for i in reversed(ids)]

    def restore(self, text: str) -> str:
        """`text` with tone marks put back on its plain-ASCII syllables; everything else as it was."""
        text = unicodedata.normalize("NFC", text)
        matches = list(_TOKEN.finditer(text))
        if not matches:
            return text
        pieces: list[str] = []
        last = 0
        for run in _match_runs(text, matches):
            forms = self._decode([m.group().lower() for m in run])
            for m, form in zip(run, forms, strict=True):
                pieces.append(text[last:m.start()])
                pieces.append(_with_case(m.group(), form))
                last = m.end()
        pieces.append(text[last:])
        return "".join(pieces)


def _with_case(orig: str, form: str) -> str:
    """`form` in the letter case of `orig` ('Thu' + 'thủ' → 'Thủ', 'HCM' stays 'HCM')."""
    if form == orig.lower():
        return orig
    if orig.isupper() and len(orig) > 1:
        return form.upper()
    if orig[:1].isupper():
        return form[:1].upper() + form[1:]
    return form


def _runs(lower_text: str) -> Iterable[list[str]]:
    """Runs of syllables not separated by punctuation, numbers or other non-syllable tokens (the
    units of the bigram model)."""
    for run in _match_runs(lower_text, list(_TOKEN.finditer(lower_text))):
        words: list[str] = []
        for m in run:
            if _SYLLABLE.match(m.group()):
                words.append(m.group())
            elif words:
                yield words
                words = []
        if words:
            yield words


def _match_runs(text: str, matches: Sequence[re.Match[str]]) -> Iterable[list[re.Match[str]]]:
    run: list[re.Match[str]] = []
    for m in matches:
        if run and _BREAK.search(text, run[-1].end(), m.start()):
            yield run
            run = []
        run.append(m)
    if run:
        yield run


@lru_cache(maxsize=1)
def get_restorer() -> AccentRestorer | None:
    """The committed model, or None (logged) when the artifact is absent."""
    if not ARTIFACT.is_file():
        log.warning("accent model %s is absent: text without tone marks is read as typed", ARTIFACT)
        return None
    return AccentRestorer.load(ARTIFACT)


def restore_accents(text: str) -> str:
    """`get_restorer().restore(text)`, or `text` unchanged without the model."""
    restorer = get_restorer()
    return restorer.restore(text) if restorer is not None else text


def restore_if_unaccented(text: str) -> str:
    """Tone marks restored when `text` is written without them (`is_unaccented`), else `text`."""
    from nlp.normalize_vi import is_unaccented

    return restore_accents(text) if is_unaccented(text) else text


# -- command line ----------------------------------------------------------------------------------

def _vntc_texts(shared_dir: Path) -> Iterable[str]:
    path = shared_dir / "data" / "topics" / "vntc" / "train.jsonl.gz"
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            yield f"{row.get('title') or ''}\n{row.get('text') or ''}"


def syllable_accuracy(restorer: AccentRestorer, texts: Sequence[str]) -> dict[str, float]:
    """Restore the folded form of each accented text and compare syllable by syllable."""
    total = right = 0
    exact = 0
    started = time.perf_counter()
    for text in texts:
        gold = [w.lower() for w in _TOKEN.findall(normalize(text))]
        got = [w.lower() for w in _TOKEN.findall(restorer.restore(fold(normalize(text))))]
        if len(gold) != len(got):
            continue
        pairs = [(g, p) for g, p in zip(gold, got, strict=True) if _SYLLABLE.match(g)]
        total += len(pairs)
        right += sum(g == p for g, p in pairs)
        exact += all(g == p for g, p in pairs)
    seconds = time.perf_counter() - started
    return {"syllables": total, "syllable_accuracy": round(right / max(total, 1), 4),
            "texts_all_right": round(exact / max(len(texts), 1), 4),
            "ms_per_text": round(1000 * seconds / max(len(texts), 1), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nlp.accents", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="count the bigram model on VNTC news")
    b.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    b.add_argument("--out", type=Path, default=ARTIFACT)
    b.add_argument("--min-bigram", type=int, default=2)
    e = sub.add_parser("eval", help="syllable accuracy on the civic dev items (folded, then restored)")
    e.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[2] / "shared")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if opts.command == "build":
        started = time.perf_counter()
        restorer = AccentRestorer.build(_vntc_texts(opts.shared), min_bigram=opts.min_bigram)
        restorer.save(opts.out)
        print(f"{len(restorer.vocab)} syllables, {len(restorer.keys)} bigrams → {opts.out} "
              f"({opts.out.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - started:.0f} s)")
        return 0
    rows = [json.loads(line) for line in
            (opts.shared / "data" / "civic" / "dev.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    print(json.dumps(syllable_accuracy(AccentRestorer.load(), [r["text"] for r in rows]), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
