"""Find place mentions in Vietnamese text and resolve them to Ho Chi Minh City areas.

Handles how residents and the press write places after the 1 July 2025 reform and before it:
"Quận 7", "Q.7", "Q7", "Q. Bình Thạnh", "huyện Củ Chi", "TP Thủ Đức", "TP.HCM", "Sài Gòn", "phường Bến Nghé",
"P.12, Q.Gò Vấp", new 2025 ward names ("phường Sài Gòn"), streets ("đường Nguyễn Hữu Cảnh"), landmarks
("chợ Bến Thành"), other provinces ("Đồng Nai") and text without tone marks ("quan 7", "thu duc").

Mechanism: the text is folded (lower case, no tone marks) with a map back to the original offsets, cut into
letter/digit tokens, and every token n-gram is looked up in one phrase table built once from the committed
gazetteer (nlp/data/gazetteer/). Matches are checked against the original spelling (when the text carries
tone marks they must agree: "Bình Thành" is not "Bình Thạnh"), the longest non-overlapping ones are kept,
then wards and streets are resolved with the districts named elsewhere in the same text. Wards and streets
need a cue word (phường/xã/P./đường); former district names may stand bare. Conservative by design.
"""

from __future__ import annotations

import gzip
import json
import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from langnghe.records import CITY_AREA_ID, Location
from nlp.areas import DATA_DIR, HCMC_FORMER_DISTRICTS, AreaIndex, load_areas
from nlp.text import fold, normalize

_TOKEN = re.compile(r"[a-z]+|[0-9]+")
_JOINABLE = re.compile(r" ?[\-\u2013/]? ?|\.")  # "Bà Rịa - Vũng Tàu", "23/9", "TP.HCM"
_ABBREV_CUES = {"q", "p", "tp", "tx", "tt", "d", "h", "bv", "kcn", "kcx"}  # "Q. Bình Thạnh", "TP. HCM"
# bare former-district names that also name districts of other provinces (Tân Phú of Đồng Nai, Bình Tân of
# Vĩnh Long): not trusted bare in a text that also names places outside the city
_AMBIGUOUS_BARE = {"tan phu", "binh tan"}
_TWO_WORD_BLOCKERS = {("cap", "nuoc"), ("dien", "luc"), ("chi", "nhanh"), ("cong", "ty")}
_HIGHWAY = ("quoc lo", "tinh lo", "huong lo")
_YEARISH = re.compile(r"[/\-]\s*\d")

# a bare name right after one of these words belongs to something else ("huyện Tân Phú" of Đồng Nai,
# "chợ Bình Tây", "sông Sài Gòn"); the matching cue+name phrase, when there is one, is longer and wins.
_BLOCKERS = {
    "huyện", "xã", "phường", "đường", "tỉnh", "trấn", "chợ", "cầu", "sông", "kênh", "rạch", "ấp", "phố",
    "quận", "hẻm", "ngõ", "làng", "ga", "cảng", "bến", "p", "q", "tp", "tx", "tt", "đ",
}
_BLOCKERS_FOLDED = {fold(w) for w in _BLOCKERS}


def _build_fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in list(range(0x00, 0x250)) + list(range(0x1E00, 0x1F00)):
        ch = chr(code)
        folded = fold(ch)
        if len(folded) == 1 and folded != ch:
            table[code] = folded
    for code in range(0x300, 0x370):  # combining marks
        table[code] = ""
    table[ord("ð")] = "d"
    table[ord("Ð")] = "d"
    return table


_FOLD_TABLE = _build_fold_table()


def fold_with_offsets(text: str) -> tuple[str, list[int] | None]:
    """Fold `text`; the list maps each folded character to its original index (None: identity)."""
    folded = text.translate(_FOLD_TABLE)
    if len(folded) == len(text):
        return folded, None
    chars: list[str] = []
    index: list[int] = []
    for i, ch in enumerate(text):
        for out in fold(ch).replace("ð", "d"):
            chars.append(out)
            index.append(i)
    return "".join(chars), index


@dataclass
class _Tok:
    folded: str
    orig: str
    start: int  # original offsets
    end: int
    join_next: bool  # the gap to the next token may sit inside a name
    gap_next: str  # folded gap text to the next token


def _tokens(text: str) -> list[_Tok]:
    folded, index = fold_with_offsets(text)
    matches = list(_TOKEN.finditer(folded))
    toks: list[_Tok] = []
    for k, m in enumerate(matches):
        if index is None:
            start, end = m.start(), m.end()
        else:
            start, end = index[m.start()], index[m.end() - 1] + 1
            while end < len(text) and unicodedata.category(text[end]) == "Mn":
                end += 1
        gap = folded[m.end():matches[k + 1].start()] if k + 1 < len(matches) else ""
        joinable = k + 1 < len(matches) and (
            _JOINABLE.fullmatch(gap) is not None or (gap == ". " and m.group() in _ABBREV_CUES))
        toks.append(_Tok(m.group(), text[start:end], start, end, joinable, gap))
    return toks


def _surface(phrase: str) -> tuple[str, ...]:
    """Lower-case tokens with tone marks, aligned with the folded tokens of the same phrase."""
    return tuple(normalize(t.orig).lower() for t in _tokens(phrase))


def _key(phrase: str) -> tuple[str, ...]:
    return tuple(t.folded for t in _tokens(phrase))


def _token_agrees(orig: str, expected: str, accented: bool) -> bool:
    low = orig.lower()
    if low == expected or (low.isascii() and not accented):  # text without tone marks: folded form only
        return True
    return normalize(low) == expected


# Folded words that make "quan" or "phuong" part of another word ("cơ quan", "liên quan", "địa phương"):
# after them a number is not a district or ward ("cơ quan 8 người")
_NOT_A_CUE_AFTER = {
    "quan": {"co", "hai", "lien", "tham", "khach", "chu", "bi", "lac", "truc", "canh", "tong", "giac",
             "ngoai", "thue", "kiem"},
    "phuong": {"dia", "bon", "tam", "song", "don", "phia", "huong", "dong", "tay", "nam", "bac", "ca"},
}


def _cue_without_marks(e: _Entry, span: list[_Tok]) -> bool:
    """ "quan 8" / "phuong 12" without marks in text that has them ("ở quan 8 ngap nuoc"): the district
    or ward (the word before is checked with every cue, in `_entry_fits`)."""
    if e.kind not in ("fd", "ward_num") or len(span) != 2 or not span[1].folded.isdigit():
        return False
    return span[0].orig.lower() in _NOT_A_CUE_AFTER and normalize(span[1].orig) == e.surface[1]


def _is_accented(text: str) -> bool:
    """Whether the text is written with Vietnamese tone marks (then spellings must agree)."""
    letters = marked = 0
    for ch in text:
        if ch.isalpha():
            letters += 1
            if not ch.isascii():
                marked += 1
    return letters > 0 and marked / letters > 0.04


@dataclass
class _Entry:
    kind: str  # city | fd | ward | ward_num | street | landmark | province | city_out
    surface: tuple[str, ...]
    cued: bool = True
    fd: str | None = None
    number: str = ""
    name: str = ""
    candidates: list[tuple[str, str | None, bool]] = field(default_factory=list)  # (fd, code, current name)
    fds: tuple[str, ...] = ()
    ward_code: str | None = None
    in_hcmc: bool = True
    generic: bool = False
    title_case: bool = False  # bare names that must be written with capitals ("Long An", not "long an")
    cue_len: int = 0  # tokens of the cue word ("đường" = 1, "thị trấn" = 2)


@dataclass
class _Match:
    i: int
    j: int  # token range [i, j)
    start: int
    end: int
    entry: _Entry


class LocationResolver:
    """Finds places in a text and resolves them to areas; build once (see `get_resolver`)."""

    def __init__(self, areas: AreaIndex | None = None) -> None:
        self.areas = areas or load_areas()
        self._table: dict[tuple[str, ...], list[_Entry]] = defaultdict(list)
        self._hcmc_fds = {a.id for a in self.areas.by_level("former_district") if a.former_province is None}
        self._fd_by_name = {a.name: a.id for a in self.areas.by_level("former_district")}
        self._legacy: dict[tuple[str, str], list[str]] = {}
        self._primary: dict[str, str] = {}
        # street names as they follow a house number ("số 240 Nguyễn Thiện Thuật")
        self._after_number: dict[tuple[str, ...], _Entry] = {}
        self._build()
        self._maxlen: dict[str, int] = {}
        for key in self._table:
            self._maxlen[key[0]] = max(self._maxlen.get(key[0], 0), len(key))

    # ---- building the phrase table -------------------------------------------------------------
    def _add(self, phrase: str, entry: _Entry) -> None:
        key = _key(phrase)
        if not key:
            return
        entry.surface = _surface(phrase)
        self._table[key].append(entry)

    def _add_fd(self, cues: list[str], name: str, fd: str, bare: bool) -> None:
        for cue in cues:
            self._add(f"{cue} {name}", _Entry("fd", (), cued=True, fd=fd))
        if bare:
            self._add(name, _Entry("fd", (), cued=False, fd=fd))

    def _build(self) -> None:
        for phrase in ("TP.HCM", "TPHCM", "HCM", "HCMC", "TP Hồ Chí Minh", "Thành phố Hồ Chí Minh",
                       "Thành phố HCM", "Sài Gòn", "Saigon", "TP Sài Gòn", "Ho Chi Minh City"):
            self._add(phrase, _Entry("city", (), cued=phrase.lower() not in ("sài gòn", "saigon")))

        for fd_area in self.areas.by_level("former_district"):
            name, fd = fd_area.name, fd_area.id
            if fd_area.former_province is None:
                if name.startswith("Quận "):
                    number = name.split()[1]
                    self._add_fd(["Quận", "Q"], number, fd, bare=False)
                elif fd_area.kind == "huyện":
                    self._add_fd(["huyện", "H."], name, fd, bare=True)
                elif fd_area.kind == "thành phố":  # Thủ Đức: quận until 2020, then thành phố
                    self._add_fd(["quận", "Q", "thành phố", "TP", "TP.", "TX"], name, fd, bare=True)
                else:
                    self._add_fd(["quận", "Q"], name, fd, bare=True)
            else:
                bare = name not in ("Phú Mỹ", "Tân Uyên", "Bà Rịa")
                self._add_fd(["huyện", "thành phố", "TP", "thị xã", "TX"], name, fd, bare=bare)
        thu_duc = self._fd_by_name["Thủ Đức"]
        for number in ("2", "9"):
            self._add_fd(["Quận", "Q"], number, thu_duc, bare=False)
        long_dat = self._fd_by_name.get("Long Đất")
        if long_dat:
            for old in ("Long Điền", "Đất Đỏ"):
                self._add_fd(["huyện"], old, long_dat, bare=True)

        self._build_wards()
        self._build_streets()
        self._build_landmarks_and_provinces()
        self._build_informal()
        for key in [k for k in self._after_number if any(e.kind != "street" for e in self._table.get(k, ()))]:
            del self._after_number[key]  # "vành đai 3 Hà Nội", "8X Hà Nội": the city, not a street

    def _build_wards(self) -> None:
        # cue → the kinds of unit it may name
        cues = {"phường": ("phường",), "P": ("phường",), "xã": ("xã",), "thị trấn": ("thị trấn",),
                "TT": ("thị trấn",), "đặc khu": ("đặc khu", "huyện")}
        ward_cands: dict[str, list[tuple[str, str | None, bool, str]]] = defaultdict(list)
        display: dict[str, str] = {}
        for ward in self.areas.by_level("ward"):
            code = ward.id.split(":", 1)[1]
            for fd in ward.related_ids or [CITY_AREA_ID]:
                ward_cands[fold(ward.name)].append((fd, code, True, ward.kind))
            display.setdefault(fold(ward.name), ward.name)
        with gzip.open(DATA_DIR / "legacy_wards.json.gz", "rt", encoding="utf-8") as fh:
            legacy = json.load(fh)
        for old in legacy:
            codes = old["new"]
            if not old["name"].strip():
                continue
            self._legacy[(fold(old["name"]), old["fd"])] = codes
            if re.fullmatch(r"(Phường|Xã|Thị trấn) \d+", old["name"]):
                continue  # numbered wards need a district: see ward_num
            old_code: str | None = codes[0] if len(codes) == 1 else None
            ward_cands[fold(old["name"])].append((old["fd"], old_code, False, old["kind"] or "phường"))
            display.setdefault(fold(old["name"]), old["name"])
        for folded_name, cands in ward_cands.items():
            name = display[folded_name]
            for cue, kinds in cues.items():
                fitting = [(fd, code, current) for fd, code, current, kind in cands if kind in kinds]
                if fitting:
                    self._add(f"{cue} {name}", _Entry("ward", (), name=name, candidates=fitting,
                                                      cue_len=len(_key(cue))))
        for number in range(1, 31):
            for cue in ("phường", "P"):
                self._add(f"{cue} {number}", _Entry("ward_num", (), number=str(number)))

    def _build_streets(self) -> None:
        with gzip.open(DATA_DIR / "streets.json.gz", "rt", encoding="utf-8") as fh:
            streets: dict[str, list[str]] = json.load(fh)
        with (DATA_DIR / "landmarks.json").open(encoding="utf-8") as fh:
            curated = json.load(fh)
        for street, district in curated["primary_streets"].items():
            if street.startswith("_"):
                continue
            if district not in self._fd_by_name:
                raise ValueError(f"landmarks.json: unknown district {district!r} for street {street!r}")
            self._primary[fold(street)] = self._fd_by_name[district]
        for name, fds in streets.items():
            for form in _street_forms(name):
                self._add_street(form, name, fds)
            key = _key(name)
            if not name[:1].isdigit() and (len(key) >= 2 or len(name) >= 6):
                self._after_number[key] = _Entry("street", _surface(name), name=name, fds=tuple(fds))
            if fold(name).startswith(("xa lo", "dai lo", *_HIGHWAY)):
                self._add(name, _Entry("street", (), cued=True, name=name, fds=tuple(fds), cue_len=2))
        self._streets = streets

    def _add_street(self, form: str, name: str, fds: Sequence[str]) -> None:
        """`form` (a spelling of street `name`) after each street cue: "đường", "Đ.", "đg"."""
        for cue in _STREET_CUES:
            self._add(f"{cue} {form}", _Entry("street", (), name=name, fds=tuple(fds), cue_len=1))

    def _build_informal(self) -> None:
        """Residents' shorthand (landmarks.json "informal"): "Q.GV", "H.BC", "đường NKKN", "đường
        Cách Mạng Tháng 8" (after a street cue: alone it is the August Revolution), "CMT8" alone."""
        with (DATA_DIR / "landmarks.json").open(encoding="utf-8") as fh:
            informal = json.load(fh)["informal"]
        for initials, district in informal["district_initials"].items():
            fd_area = self.areas.get(self._fd_by_name[district])
            assert fd_area is not None
            cues = (["huyện", "H."] if fd_area.kind == "huyện" else
                    ["quận", "Q", "thành phố", "TP", "TP."] if fd_area.kind == "thành phố" else ["quận", "Q"])
            self._add_fd(cues, initials, fd_area.id, bare=False)
        for initials, street in (informal["street_initials"] | informal["street_forms"]).items():
            if street not in self._streets:
                raise ValueError(f"landmarks.json: unknown street {street!r} for {initials!r}")
            self._add_street(initials, street, self._streets[street])
        for form, street in informal["standalone_streets"].items():
            if form.startswith("_"):
                continue
            if street not in self._streets:
                raise ValueError(f"landmarks.json: unknown street {street!r} for {form!r}")
            self._add(form, _Entry("street", (), cued=True, name=street, fds=tuple(self._streets[street]),
                                   cue_len=0))

    def _build_landmarks_and_provinces(self) -> None:
        with (DATA_DIR / "landmarks.json").open(encoding="utf-8") as fh:
            curated = json.load(fh)
        ward_by_name = {w.name: w.id.split(":", 1)[1] for w in self.areas.by_level("ward")}
        for item in curated["landmarks"]:
            fds: list[str] = []
            for district in item["districts"]:
                if district not in self._fd_by_name:
                    raise ValueError(f"landmarks.json: unknown district {district!r}")
                fds.append(self._fd_by_name[district])
            ward = item.get("ward")
            if ward is not None and ward not in ward_by_name:
                raise ValueError(f"landmarks.json: unknown ward {ward!r}")
            province = item.get("province")
            for name in item["names"]:
                for variant in _landmark_variants(name):
                    self._add(variant, _Entry(
                        "landmark", (), name=name, fds=tuple(fds),
                        ward_code=ward_by_name.get(ward) if ward else None,
                        in_hcmc=province is None, generic=bool(item.get("generic"))))
        provinces = json.loads((DATA_DIR / "provinces.json").read_text(encoding="utf-8"))
        merged = {"Bình Dương", "Bà Rịa - Vũng Tàu"}
        extra = ["Thừa Thiên Huế", "Thừa Thiên - Huế", "Hà Tây", "Bà Rịa – Vũng Tàu", "Bà Rịa Vũng Tàu",
                 "BR-VT", "BRVT"]
        municipalities = {"Hà Nội", "Đà Nẵng", "Hải Phòng", "Cần Thơ", "Huế"}
        for name in list(provinces) + extra:
            in_hcmc = name in merged or fold(name).replace(" ", "") in ("bariavungtau", "br-vt", "brvt")
            entry_args: dict[str, Any] = {"name": name, "in_hcmc": in_hcmc}
            self._add(name, _Entry("province", (), cued=False, title_case=True, **entry_args))
            self._add(f"tỉnh {name}", _Entry("province", (), **entry_args))
            if name in municipalities:
                for cue in ("TP", "TP.", "thành phố"):
                    self._add(f"{cue} {name}", _Entry("province", (), **entry_args))
        for city in curated["cities"]:
            if city.startswith("_"):
                continue
            if fold(city) in {fold(p) for p in municipalities}:
                continue
            self._add(city, _Entry("city_out", (), cued=False, title_case=True, name=city))
            for cue in ("TP", "TP.", "thành phố"):
                self._add(f"{cue} {city}", _Entry("city_out", (), name=city))

    # ---- matching --------------------------------------------------------------------------------
    def _find(self, text: str, toks: list[_Tok]) -> list[_Match]:
        found: list[_Match] = []
        accented = _is_accented(text)
        n = len(toks)
        for i in range(n):
            maxlen = self._maxlen.get(toks[i].folded)
            if not maxlen:
                continue
            key: list[str] = []
            spans: list[tuple[int, tuple[str, ...]]] = []
            j = i
            while j < n and len(key) < maxlen:
                key.append(toks[j].folded)
                spans.append((j + 1, tuple(key)))
                if not toks[j].join_next:
                    break
                j += 1
            for end, k in reversed(spans):  # longest first
                entries = self._table.get(k)
                if not entries:
                    continue
                ok = [e for e in entries if self._entry_fits(e, toks, i, end, accented)]
                if ok:
                    found.append(_Match(i, end, toks[i].start, toks[end - 1].end, ok[0]))
                    break
        found += self._after_house_numbers(toks, accented)
        # digit-glued forms ("P3Q3", "Q7") are cut into letter and digit tokens by the tokenizer
        found.sort(key=lambda m: (-(m.end - m.start), m.start))
        taken = [False] * n
        chosen: list[_Match] = []
        for m in found:
            if any(taken[m.i:m.j]):
                continue
            for t in range(m.i, m.j):
                taken[t] = True
            chosen.append(m)
        for m in list(chosen):
            if m.entry.kind == "street" and m.entry.cue_len == 1:
                plural = any(t.folded in ("cac", "nhung", "tuyen") for t in toks[max(0, m.i - 2):m.i])
                chosen += self._street_list(toks, m.j, taken, accented, commas=plural)
        chosen.sort(key=lambda m: m.start)
        return chosen

    def _street_name_at(self, toks: list[_Tok], k: int, accented: bool) -> _Match | None:
        """The longest gazetteer street name written with capitals that starts at token `k` and is
        not the start of a longer name."""
        n = len(toks)
        for length in range(min(_MAX_STREET_TOKENS, n - k), 0, -1):
            span = toks[k:k + length]
            entry = self._after_number.get(tuple(t.folded for t in span))
            if entry is None or any(t.gap_next != " " for t in span[:-1]):
                continue
            if not all(t.orig[:1].isupper() and _token_agrees(t.orig, e, accented)
                       for t, e in zip(span, entry.surface, strict=True)):
                continue
            nxt = toks[k + length] if k + length < n else None
            if nxt is not None and span[-1].gap_next == " " and nxt.orig[:1].isupper():
                continue  # part of a longer name
            return _Match(k, k + length, span[0].start, span[-1].end, entry)
        return None

    def _street_list(self, toks: list[_Tok], j: int, taken: list[bool], accented: bool,
                     commas: bool) -> list[_Match]:
        """Streets that follow a street named after its cue: an intersection ("góc đường Thanh Niên -
        Nguyễn Đình Thi") and, after a plural cue (`commas`: "các tuyến đường Lò Lu, Lã Xuân Oai",
        "các đường Hai Bà Trưng, Nam Kỳ Khởi Nghĩa và Lê Lợi"), a list; the guide marks each. Without
        a plural cue a comma more often starts a ward or a district ("đường X, An Phú")."""
        out: list[_Match] = []
        while j < len(toks) and not taken[j]:
            gap = toks[j - 1].gap_next
            k = j
            if commas and toks[j].folded == "va" and gap == " " and toks[j].gap_next == " ":
                k = j + 1  # "X và Y"
            elif gap.strip() not in ("-", "–") and not (commas and gap == ", "):
                break
            m = self._street_name_at(toks, k, accented) if k < len(toks) and not taken[k] else None
            if m is None:
                break
            for t in range(m.i, m.j):
                taken[t] = True
            out.append(m)
            j = m.j
        return out

    def _after_house_numbers(self, toks: list[_Tok], accented: bool) -> list[_Match]:
        """Street names right after a house number, written without "đường": "số 240 Nguyễn Thiện
        Thuật", "258/81 Dương Bá Trạc", "hẻm 411 Lê Đức Thọ", "233C Đinh Tiên Hoàng". The span is the
        name alone, as the annotation guide marks it; numbers after a date, time or quantity word
        ("ngày 15/12", "năm 2018") and after a unit cue ("phường 12") are not house numbers."""
        out: list[_Match] = []
        n, i = len(toks), 0
        while i < n:
            if not toks[i].folded.isdigit():
                i += 1
                continue
            j = i  # the house number: "258/81", "270A", "42/A1"
            while j + 1 < n and toks[j].gap_next in ("", "/") and (
                    toks[j + 1].folded.isdigit() or len(toks[j + 1].folded) == 1):
                j += 1
            k = j + 1
            glued = i > 0 and toks[i - 1].gap_next == ""  # "U22", "Q7": a code, not a house number
            if k >= n or toks[j].gap_next != " " or glued or (i > 0 and toks[i - 1].folded in _NOT_HOUSE_NUMBER):
                i = k
                continue
            m = self._street_name_at(toks, k, accented)
            if m is not None:
                out.append(m)
            i = k
        return out

    def _entry_fits(self, e: _Entry, toks: list[_Tok], i: int, j: int, accented: bool) -> bool:
        span = toks[i:j]
        if not all(_token_agrees(t.orig, s, accented) for t, s in zip(span, e.surface, strict=True)) \
                and not (accented and _cue_without_marks(e, span)):
            return False
        if e.kind in ("ward", "street") and e.cue_len < len(span):
            name_tok = span[e.cue_len].orig
            long_street = e.kind == "street" and len(span) - e.cue_len >= 3  # "đường nguyễn hữu cảnh"
            if not (name_tok[:1].isupper() or name_tok[:1].isdigit() or long_street):
                return False  # "đường trung tâm" is not a street name
        first = span[0]
        prev_word = toks[i - 1] if i > 0 else None
        if first.orig.lower() in _NOT_A_CUE_AFTER and prev_word is not None \
                and prev_word.folded in _NOT_A_CUE_AFTER[first.orig.lower()]:
            return False  # "co quan 8 nguoi" without marks: "cơ quan", not Quận 8
        single_cue = first.folded in ("p", "d") and len(span) > 1
        if single_cue and not (first.orig.isupper() or "." in first.gap_next):
            return False  # "P.12", "P12", "Đ.Lê Lợi": single-letter cues need a capital or a dot
        if first.folded == "q" and len(span) == 2 and span[1].folded.isdigit():
            nxt = span[1]
            if _YEARISH.match(nxt.gap_next) or (j < len(toks) and len(toks[j].folded) == 4
                                                and toks[j].folded.isdigit() and nxt.join_next):
                return False  # "Q1/2024", "Q2 2023": quarters, not districts
        if not e.cued:
            prev = toks[i - 1] if i > 0 and toks[i - 1].join_next else None
            if prev is not None:
                low = prev.orig.lower()
                if low in _BLOCKERS or (low.isascii() and low in _BLOCKERS_FOLDED):
                    return False
                before = toks[i - 2] if i > 1 and toks[i - 2].join_next else None
                if before is not None and (before.folded, prev.folded) in _TWO_WORD_BLOCKERS:
                    return False  # "Cấp nước Nhà Bè", "Điện lực Củ Chi": organisations
                if e.kind != "city_out" and prev.orig[:1].isupper() and not prev.orig.isupper() \
                        and prev.gap_next == " " and span[0].orig[:1].isupper():
                    return False  # inside a longer proper name ("Nam Sài Gòn", "Nguyễn Bình Tân")
            nxt_tok = toks[j] if j < len(toks) and span[-1].join_next else None
            if nxt_tok is not None and span[-1].gap_next == " " and nxt_tok.orig[:1].isupper() \
                    and span[-1].orig[:1].isupper() and not nxt_tok.orig.isupper():
                return False  # "Bình Tân Hòa", "Sài Gòn Co.op"
            if e.title_case and not all(t.orig[:1].isupper() for t in span if t.folded.isalpha()):
                return False
        return True

    # ---- resolution --------------------------------------------------------------------------------
    def resolve(self, text: str, expand_lists: bool = False) -> list[Location]:
        """All place mentions in `text`, in order, with exact spans of the original text.

        `expand_lists`: also return the further numbers of a district list ("các quận 6, 8, 11" →
        "8" and "11" as Quận 8 and Quận 11). Off by default, as the civic annotation guide marks
        only the cue+number span; turn it on where areas matter more than spans (routing)."""
        if not text:
            return []
        toks = _tokens(text)
        matches = self._find(text, toks)
        if expand_lists:
            matches = self._extend_lists(toks, matches)
        ctx_fds: list[tuple[int, str]] = []  # (char position, fd) of district mentions
        hcmc_ctx = bdvt_ctx = outside_ctx = False
        for m in matches:
            e = m.entry
            if e.kind == "fd" and e.fd:
                ctx_fds.append((m.start, e.fd))
                hcmc_ctx = True
                area = self.areas.get(e.fd)
                bdvt_ctx = bdvt_ctx or bool(area and area.former_province)
            elif e.kind == "city":
                hcmc_ctx = True
            elif e.kind == "landmark":
                if e.in_hcmc and not e.generic:
                    hcmc_ctx = True
                    if len(e.fds) == 1:
                        ctx_fds.append((m.start, e.fds[0]))
                elif not e.in_hcmc:
                    outside_ctx = True
            elif e.kind == "province":
                if e.in_hcmc:
                    bdvt_ctx = True
                else:
                    outside_ctx = True
            elif e.kind == "city_out":
                outside_ctx = True
        ctx_set = {fd for _, fd in ctx_fds}
        only_outside = outside_ctx and not hcmc_ctx
        bound = self._districts_bound_to_streets(text, matches)

        out: list[Location] = []
        for idx, m in enumerate(matches):
            e = m.entry
            span = text[m.start:m.end]
            loc: Location | None = None
            if e.kind == "city":
                loc = Location(span, m.start, m.end, "city", area_ids=[CITY_AREA_ID], in_hcmc=True)
            elif e.kind == "fd" and e.fd:
                bare = " ".join(t.folded for t in toks[m.i:m.j])
                if outside_ctx and not e.cued and bare in _AMBIGUOUS_BARE:
                    continue
                loc = self._district_location(span, m, e.fd)
            elif e.kind == "province":
                loc = Location(span, m.start, m.end, "province",
                               area_ids=[CITY_AREA_ID] if e.in_hcmc else [], in_hcmc=e.in_hcmc)
            elif e.kind == "city_out":
                loc = Location(span, m.start, m.end, "city", area_ids=[], in_hcmc=False)
            elif e.kind == "landmark":
                if e.generic and (only_outside or self._followed_by_outside(matches, idx, toks)):
                    continue
                loc = self._landmark_location(span, m, e)
            elif e.kind == "ward":
                if only_outside:
                    continue
                loc = self._ward_location(span, m, e, ctx_set, bdvt_ctx, outside_ctx)
            elif e.kind == "ward_num":
                if only_outside:
                    continue
                loc = self._numbered_ward(span, m, e, ctx_fds, ctx_set)
            elif e.kind == "street":
                if only_outside:
                    continue
                others = {fd for k, fd in bound.items() if k != idx}  # districts of other streets
                own_ctx = (ctx_set - others) | ({bound[idx]} if idx in bound else set())
                loc = self._street_location(span, m, e, own_ctx, bdvt_ctx, hcmc_ctx, outside_ctx)
            if loc is not None:
                out.append(loc)
        return out

    @staticmethod
    def _districts_bound_to_streets(text: str, matches: list[_Match]) -> dict[int, str]:
        """Street match index → the district written right after it ("đường Nguyễn Bỉnh Khiêm (quận
        1)", "đường X, Q.3"), when that district is named nowhere else: it tells where that street is,
        not where the text's other streets are ("đường Nguyễn Hữu Cảnh … đường Nguyễn Bỉnh Khiêm
        (quận 1)" keeps Nguyễn Hữu Cảnh in Bình Thạnh)."""
        bound: dict[int, str] = {}
        named: dict[str, int] = {}
        for m in matches:
            if m.entry.kind == "fd" and m.entry.fd:
                named[m.entry.fd] = named.get(m.entry.fd, 0) + 1
        for k in range(1, len(matches)):
            prev, m = matches[k - 1], matches[k]
            fd = m.entry.fd
            if prev.entry.kind == "street" and m.entry.kind == "fd" and fd and named.get(fd) == 1 \
                    and text[prev.end:m.start].strip() in ("(", ",", "-", "–", ""):
                bound[k - 1] = fd
        return bound

    def _extend_lists(self, toks: list[_Tok], matches: list[_Match]) -> list[_Match]:
        """District lists after a numbered cue: "các quận 6, 8, 11", "quận 3, 5 và 10", "Q.1, 3".

        Each further number becomes a district mention of its own. Accepted when the list is
        plural ("các"/"những" before the cue, or a "và"/"and" before its last number) or ends the
        clause, so that "quận 7, 2 người bị thương" does not make "2" a district."""
        out: list[_Match] = []
        taken = {t for m in matches for t in range(m.i, m.j)}
        for m in matches:
            out.append(m)
            e = m.entry
            if e.kind != "fd" or not e.cued or m.j - m.i != 2 or not toks[m.j - 1].folded.isdigit():
                continue
            cue = toks[m.i].folded
            numbers: list[int] = []  # token indices of the further numbers
            k, saw_and = m.j - 1, False
            while k + 1 < len(toks) and (k + 1) not in taken:
                gap = toks[k].gap_next.strip()
                nxt = toks[k + 1]
                if gap in (",", ";") and nxt.folded.isdigit():
                    k += 1
                elif gap == "" and nxt.folded in ("va", "hay", "hoac") and k + 2 < len(toks) \
                        and toks[k + 1].gap_next.strip() == "" and toks[k + 2].folded.isdigit():
                    k += 2
                    saw_and = True
                else:
                    break
                key = (cue, toks[k].folded)
                if key not in self._table or not any(x.kind == "fd" for x in self._table[key]):
                    break
                numbers.append(k)
            if not numbers:
                continue
            before = toks[m.i - 1].folded if m.i > 0 else ""
            last = toks[numbers[-1]]
            ends_clause = numbers[-1] + 1 >= len(toks) or last.gap_next.strip()[:1] in (",", ".", ";", ")", ":")
            if not (before in ("cac", "nhung") or saw_and or ends_clause):
                continue
            for k in numbers:
                fd_entry = next(x for x in self._table[(cue, toks[k].folded)] if x.kind == "fd")
                out.append(_Match(k, k + 1, toks[k].start, toks[k].end, fd_entry))
        out.sort(key=lambda x: x.start)
        return out

    def areas_for(self, locations: list[Location]) -> list[str]:
        """The deduplicated union of the locations' area ids, in first-seen order."""
        seen: dict[str, None] = {}
        for loc in locations:
            for area_id in loc.area_ids:
                seen.setdefault(area_id, None)
        return list(seen)

    def _former_name(self, fd: str | None) -> str | None:
        if fd is None or fd not in self._hcmc_fds:
            return None
        area = self.areas.get(fd)
        return area.name if area else None

    def _ward_name(self, code: str | None) -> str | None:
        area = self.areas.get(f"w:{code}") if code else None
        return area.name if area else None

    def _district_location(self, span: str, m: _Match, fd: str) -> Location:
        return Location(span, m.start, m.end, "district", former_district=self._former_name(fd),
                        area_ids=[CITY_AREA_ID, fd], in_hcmc=True)

    def _landmark_location(self, span: str, m: _Match, e: _Entry) -> Location:
        if not e.in_hcmc:
            return Location(span, m.start, m.end, "landmark", area_ids=[], in_hcmc=False)
        fds = list(e.fds)
        former = self._former_name(fds[0]) if len(fds) == 1 else None
        ids = [CITY_AREA_ID, *fds]
        if e.ward_code:
            ids.append(f"w:{e.ward_code}")
        return Location(span, m.start, m.end, "landmark", former_district=former,
                        ward=self._ward_name(e.ward_code), area_ids=ids, in_hcmc=True)

    def _followed_by_outside(self, matches: list[_Match], idx: int, toks: list[_Tok]) -> bool:
        if idx + 1 >= len(matches):
            return False
        nxt = matches[idx + 1]
        if nxt.i - matches[idx].j > 1:
            return False
        return nxt.entry.kind in ("province", "city_out") and not nxt.entry.in_hcmc or (
            nxt.entry.kind == "city_out")

    def _pick_fd(self, fds: set[str], ctx: set[str], bdvt_ctx: bool, outside_ctx: bool) -> str | None:
        """One former district: the one named elsewhere in the text, else the only candidate.

        Old HCMC is preferred unless the text names Bình Dương / Bà Rịa – Vũng Tàu; when the text also names
        places outside the city, only a district named in the text is trusted."""
        if not bdvt_ctx:
            hcmc_only = fds & self._hcmc_fds
            if hcmc_only:
                fds = hcmc_only
        hit = fds & ctx
        if len(hit) == 1:
            return next(iter(hit))
        if len(fds) == 1 and not outside_ctx:
            return next(iter(fds))
        return None

    def _ward_location(self, span: str, m: _Match, e: _Entry, ctx: set[str], bdvt_ctx: bool,
                       outside_ctx: bool) -> Location:
        cands = [c for c in e.candidates if c[0] != CITY_AREA_ID] or e.candidates
        fd = self._pick_fd({c[0] for c in cands}, ctx, bdvt_ctx, outside_ctx)
        chosen = [c for c in cands if c[0] == fd] if fd is not None else cands
        current = {c[1] for c in chosen if c[2] and c[1]}
        codes = current or {c[1] for c in chosen if c[1]}
        if any(c[1] is None for c in chosen) and not current:
            codes.add("")  # an old ward split between several new ones
        code = next(iter(codes)) if len(codes) == 1 and "" not in codes else None
        ids = [CITY_AREA_ID]
        if fd and fd != CITY_AREA_ID:
            ids.append(fd)
        if code:
            ids.append(f"w:{code}")
            ward_area = self.areas.get(f"w:{code}")
            if fd is None and ward_area is not None:
                ids.extend(ward_area.related_ids)
        return Location(span, m.start, m.end, "ward", former_district=self._former_name(fd),
                        ward=self._ward_name(code), area_ids=ids, in_hcmc=True)

    def _numbered_ward(self, span: str, m: _Match, e: _Entry, ctx_fds: list[tuple[int, str]],
                       ctx: set[str]) -> Location | None:
        near = [(abs(pos - m.end), fd) for pos, fd in ctx_fds if abs(pos - m.end) <= 60]
        fd: str | None = min(near)[1] if near else None
        if fd is None:
            hcmc = ctx & self._hcmc_fds
            if len(hcmc) == 1:
                fd = next(iter(hcmc))
        if fd is None:
            return None  # "P. 12" alone names no place
        codes = self._legacy.get((fold(f"Phường {e.number}"), fd)) or \
            self._legacy.get((fold(f"Xã {e.number}"), fd)) or []
        code = codes[0] if len(codes) == 1 else None
        ids = [CITY_AREA_ID, fd] + ([f"w:{code}"] if code else [])
        return Location(span, m.start, m.end, "ward", former_district=self._former_name(fd),
                        ward=self._ward_name(code), area_ids=ids, in_hcmc=True)

    def _street_location(self, span: str, m: _Match, e: _Entry, ctx: set[str], bdvt_ctx: bool,
                         hcmc_ctx: bool, outside_ctx: bool) -> Location:
        key = fold(e.name)
        fd: str | None = None
        if not key.startswith(_HIGHWAY):  # national/provincial roads cross many districts
            fd = self._pick_fd(set(e.fds), ctx, bdvt_ctx, outside_ctx=True)  # named district only
            if fd is None and not outside_ctx:
                fd = self._primary.get(key) or self._pick_fd(set(e.fds), ctx, bdvt_ctx, outside_ctx=False)
        if fd is not None:
            return Location(span, m.start, m.end, "street", former_district=self._former_name(fd),
                            area_ids=[CITY_AREA_ID, fd], in_hcmc=True)
        return Location(span, m.start, m.end, "street", area_ids=[CITY_AREA_ID] if hcmc_ctx else [],
                        in_hcmc=hcmc_ctx)


_STREET_CUES = ("đường", "Đ.", "đg")
# words before a number that make it a date, time, quantity or unit number, not a house number
_NOT_HOUSE_NUMBER = frozenset({
    "ngay", "thang", "nam", "luc", "gio", "phut", "khoang", "hon", "tuoi", "lan", "quy", "tu", "den",
    "phuong", "p", "quan", "q", "huyen", "h", "xa", "to", "ap", "khu", "kp", "lo", "tang", "lau",
    "phong", "block", "tuyen", "top", "hang", "doi", "lop", "khoa", "the", "ql", "tl", "hl"})
_MAX_STREET_TOKENS = 6
# day and month numbers as words, for streets named after a date ("30/4" = "Ba Mươi Tháng Tư")
_NUMBER_WORDS = {1: "Một", 2: "Hai", 3: "Ba", 4: "Bốn", 5: "Năm", 6: "Sáu", 7: "Bảy", 8: "Tám", 9: "Chín",
                 10: "Mười", 11: "Mười Một", 12: "Mười Hai", 19: "Mười Chín", 20: "Hai Mươi", 30: "Ba Mươi"}
_MONTH_WORDS = {4: "Tư"}


def _street_forms(name: str) -> list[str]:
    """The spellings of a street name: a date street "3/2" is also "3-2", "3 tháng 2" and "Ba
    Tháng Hai" (the gazetteer keeps the numeric form, see nlp.build_gazetteer)."""
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})", name)
    if not m:
        return [name]
    day, month = int(m.group(1)), int(m.group(2))
    forms = [name, f"{day} tháng {month}"]
    if day in _NUMBER_WORDS and month in _NUMBER_WORDS:
        forms.append(f"{_NUMBER_WORDS[day]} Tháng {_MONTH_WORDS.get(month, _NUMBER_WORDS[month])}")
    return forms


_ABBREVIATIONS = (
    ("bệnh viện ", ("BV ", "BV. ")),
    ("khu công nghiệp ", ("KCN ",)),
    ("khu chế xuất ", ("KCX ",)),
    ("đại học ", ("trường đại học ", "ĐH ", "trường ĐH ")),
    ("công viên ", ("CV ",)),
    ("sân bay ", ("phi trường ",)),
)


_SCHOOL_HEADS = ("trường THPT ", "trường PTTH ", "THPT ", "PTTH ", "trường trung học phổ thông ")
_ROMAN = {"1": "I", "2": "II", "3": "III"}


def _landmark_variants(name: str) -> list[str]:
    """The name and its usual spellings: 'bệnh viện Chợ Rẫy' → also 'BV Chợ Rẫy'; 'bệnh viện Nhi
    Đồng 1' → also '… Nhi Đồng I'; 'trường THPT chuyên Trần Đại Nghĩa' → also 'trường PTTH Trần
    Đại Nghĩa', 'THPT chuyên …' and the other names of a high school."""
    out = [name]
    low = name.lower()
    for head, alts in _ABBREVIATIONS:
        if low.startswith(head):
            out.extend(alt + name[len(head):] for alt in alts)
    if low.startswith("trường thpt "):
        rest = name[len("trường THPT "):]
        bare = rest[len("chuyên "):] if rest.lower().startswith("chuyên ") else None
        for head in _SCHOOL_HEADS:
            out.append(head + rest)
            if bare:
                out.extend((head + bare, head + "chuyên " + bare))
        if bare:
            out.append("trường chuyên " + bare)
    if "TP.HCM" in name:
        out.extend(v.replace("TP.HCM", alt) for v in list(out) for alt in ("TPHCM", "TP HCM", "TP. HCM"))
    last = name.rsplit(" ", 1)
    if len(last) == 2 and last[1] in _ROMAN:
        out.extend(v[: -len(last[1])] + _ROMAN[last[1]] for v in list(out) if v.endswith(" " + last[1]))
    return list(dict.fromkeys(out))


@lru_cache(maxsize=1)
def get_resolver() -> LocationResolver:
    """The shared resolver, built once per process."""
    return LocationResolver()


def resolve(text: str) -> list[Location]:
    """Shortcut: `get_resolver().resolve(text)`."""
    return get_resolver().resolve(text)


# the 22 names as GUIDE.md writes them, re-exported for callers that validate former_district values
FORMER_DISTRICT_NAMES = HCMC_FORMER_DISTRICTS
