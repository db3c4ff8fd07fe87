"""Derive the committed gazetteer tables (nlp/data/gazetteer/) from the raw sources in ../shared.

Run once, commit the output: `python -m nlp.build_gazetteer [--src ../shared/data/gazetteer]`.
The product reads only the derived tables; sources and licences are listed in SOURCES.md there.

Outputs
- areas.json.gz: the city, the former district-level units (22 of old HCMC, those of former Bình Dương
  and Bà Rịa – Vũng Tàu) and the 168 current wards/communes, with their links.
- legacy_wards.json.gz: old (pre-2025) wards/communes of the three former provinces → former district and
  the current ward(s) they went into.
- streets.json.gz: street name → former district-level units it runs through (2019 lists).
- provinces.json: Vietnamese provinces (34 current + 63 pre-2025) for "outside HCMC" mentions.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from nlp.text import fold, normalize

OUT_DIR = Path(__file__).resolve().parent / "data" / "gazetteer"
DEFAULT_SRC = Path(__file__).resolve().parents[2] / "shared" / "data" / "gazetteer"
HCMC_CODE = "79"

# The 22 former HCMC district-level units, named exactly as the civic GUIDE.md requires.
HCMC_DISTRICTS: list[tuple[str, str]] = [
    ("Quận 1", "quận"), ("Quận 3", "quận"), ("Quận 4", "quận"), ("Quận 5", "quận"), ("Quận 6", "quận"),
    ("Quận 7", "quận"), ("Quận 8", "quận"), ("Quận 10", "quận"), ("Quận 11", "quận"), ("Quận 12", "quận"),
    ("Bình Thạnh", "quận"), ("Gò Vấp", "quận"), ("Phú Nhuận", "quận"), ("Tân Bình", "quận"),
    ("Tân Phú", "quận"), ("Bình Tân", "quận"), ("Thủ Đức", "thành phố"), ("Củ Chi", "huyện"),
    ("Hóc Môn", "huyện"), ("Bình Chánh", "huyện"), ("Nhà Bè", "huyện"), ("Cần Giờ", "huyện"),
]
# Older district names that now belong to one of the units above (or of the merged provinces).
DISTRICT_ALIASES = {
    "Quận 2": "Thủ Đức", "Quận 9": "Thủ Đức", "Quận Thủ Đức": "Thủ Đức",
    "Long Điền": "Long Đất", "Đất Đỏ": "Long Đất",
}
FORMER_PROVINCES = {"Tỉnh Bình Dương": "Bình Dương", "Tỉnh Bà Rịa - Vũng Tàu": "Bà Rịa – Vũng Tàu"}
_PREFIX = re.compile(r"^(quận|huyện|thị xã|thành phố|phường|xã|thị trấn|đặc khu|tỉnh)\s+", re.IGNORECASE)


def slug(name: str) -> str:
    """'Bình Thạnh' → 'binh-thanh', 'Quận 1' → 'quan-1'."""
    return re.sub(r"[^a-z0-9]+", "-", fold(name)).strip("-")


def strip_prefix(full: str) -> tuple[str, str]:
    """'Thành phố Thủ Đức' → ('thành phố', 'Thủ Đức'); numbered units keep 'Quận'."""
    full = normalize(full)
    match = _PREFIX.match(full)
    if not match:
        return "", full
    kind = match.group(1).lower()
    rest = full[match.end():]
    if rest.isdigit():  # "Quận 1", "Phường 12": the number alone is not a name
        return kind, f"{kind.capitalize()} {rest}"
    return kind, rest


def district_name(full: str) -> str:
    """Canonical former district name for an old district string ('Quận Bình Thạnh' → 'Bình Thạnh')."""
    kind, name = strip_prefix(full)
    if full.strip() in DISTRICT_ALIASES:
        return DISTRICT_ALIASES[full.strip()]
    name = DISTRICT_ALIASES.get(name, name)
    return name


def _dump_gz(path: Path, data: Any) -> None:
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode("utf-8")
    with gzip.GzipFile(path, "wb", mtime=0) as fh:  # mtime=0: byte-identical rebuilds
        fh.write(raw)


def build(src: Path, out: Path) -> dict[str, int]:
    """Read the raw sources under `src` and write the derived tables to `out`; returns counts."""
    out.mkdir(parents=True, exist_ok=True)
    units = json.loads((src / "vn-units-2025-simplified.json").read_text(encoding="utf-8"))
    legacy = list(csv.DictReader((src / "vn-wards-legacy-to-2025.csv").open(encoding="utf-8")))
    preds = {r["ma"]: r["truocsapnhap"] for r in
             json.loads((src / "vn-wards-2025-with-predecessors.json").read_text(encoding="utf-8"))}

    hcmc = next(p for p in units if p["Code"] == HCMC_CODE)
    areas: dict[str, dict[str, Any]] = {}
    areas["hcmc"] = {"id": "hcmc", "name": "Thành phố Hồ Chí Minh", "level": "city", "kind": "thành phố",
                     "former_province": None, "parent_ids": [], "related_ids": []}
    hcmc_names = {name for name, _ in HCMC_DISTRICTS}
    for name, kind in HCMC_DISTRICTS:
        fid = "fd:" + slug(name)
        areas[fid] = {"id": fid, "name": name, "level": "former_district", "kind": kind,
                      "former_province": None, "parent_ids": ["hcmc"], "related_ids": []}

    # former districts of Bình Dương / Bà Rịa – Vũng Tàu, kinds as of 2024 (legacy table)
    ward_fds: dict[str, set[str]] = defaultdict(set)
    legacy_out: list[dict[str, Any]] = []
    for row in legacy:
        if row["newProvinceCode"] != HCMC_CODE:
            continue
        province = FORMER_PROVINCES.get(row["province"])
        name = district_name(row["district"])
        fid = "fd:" + slug(name)
        if province and fid not in areas:
            areas[fid] = {"id": fid, "name": name, "level": "former_district",
                          "kind": row["districtType"].lower(), "former_province": province,
                          "parent_ids": ["hcmc"], "related_ids": []}
        if not province and name not in hcmc_names:
            raise ValueError(f"unknown HCMC district {row['district']!r}")
        code = row["newWardCode"].zfill(5)
        ward_fds[code].add(fid)
        kind, wname = strip_prefix(row["ward"])
        legacy_out.append({"name": wname, "kind": kind, "fd": fid, "new": [code]})

    # old 2019 lists: wards that were merged before 2024 are absent from the legacy table
    for fname in ("hcmc-streets-by-district-2019.json", "binhduong-streets-by-district-2019.json",
                  "bariavungtau-streets-by-district-2019.json"):
        data = json.loads((src / fname).read_text(encoding="utf-8"))
        for dist in data["district"]:
            fid = "fd:" + slug(district_name(f"{dist['pre'].strip()} {dist['name'].strip()}"))
            if fid not in areas:
                raise ValueError(f"{fname}: unknown district {dist['name']!r}")
            for ward in dist["ward"]:
                kind, wname = strip_prefix(f"{ward['pre']} {ward['name']}")
                legacy_out.append({"name": wname, "kind": kind, "fd": fid, "new": []})

    # merge duplicates (same name + district): union of new codes
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for entry in legacy_out:
        key = (fold(entry["name"]), entry["fd"])
        if key in merged:
            merged[key]["new"] = sorted(set(merged[key]["new"]) | set(entry["new"]))
            if not merged[key]["kind"]:
                merged[key]["kind"] = entry["kind"]
        else:
            merged[key] = dict(entry)

    for ward in hcmc["Wards"]:
        code = ward["Code"]
        kind, name = strip_prefix(ward["FullName"])
        related = sorted(ward_fds.get(code, set()))
        wid = "w:" + code
        areas[wid] = {"id": wid, "name": name, "level": "ward", "kind": kind, "former_province":
                      next((areas[f]["former_province"] for f in related), None),
                      "parent_ids": ["hcmc"], "related_ids": related,
                      "predecessors": preds.get(code, "")}
        for fid in related:
            areas[fid]["related_ids"].append(wid)
    for area in areas.values():
        area["related_ids"] = sorted(area["related_ids"])
    _dump_gz(out / "areas.json.gz", sorted(areas.values(), key=lambda a: a["id"]))
    _dump_gz(out / "legacy_wards.json.gz", sorted(merged.values(), key=lambda e: (e["fd"], e["name"])))

    streets: dict[str, set[str]] = defaultdict(set)
    spellings: dict[str, str] = {}
    for fname in ("hcmc-streets-by-district-2019.json", "binhduong-streets-by-district-2019.json",
                  "bariavungtau-streets-by-district-2019.json"):
        data = json.loads((src / fname).read_text(encoding="utf-8"))
        for dist in data["district"]:
            fid = "fd:" + slug(district_name(f"{dist['pre'].strip()} {dist['name'].strip()}"))
            for street in dist["street"]:
                street_name = normalize(street)
                # numbered/coded lanes ("10A", "D2") are not nameable without a district; streets
                # named after a date ("3/2", "30/4") are, and keep their numeric form
                date = _date_street(street_name)
                if date:
                    street_name = date
                elif not re.search(r"[^\W\d_]{2,}", street_name) or len(fold(street_name)) < 4:
                    continue
                skey = fold(street_name)
                streets[skey].add(fid)
                spellings.setdefault(skey, street_name)
    _dump_gz(out / "streets.json.gz", {spellings[k]: sorted(v) for k, v in streets.items()})

    provinces: set[str] = set()
    for prov in units:
        provinces.add(normalize(prov["Name"]))
    for row in csv.DictReader((src / "vn-wards-legacy-to-2025.csv").open(encoding="utf-8")):
        provinces.add(strip_prefix(row["province"])[1])
    provinces = {p for p in provinces if p != "Hồ Chí Minh"}
    (out / "provinces.json").write_text(
        json.dumps(sorted(provinces), ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    counts = {"areas": len(areas), "wards": sum(a["level"] == "ward" for a in areas.values()),
              "legacy_wards": len(merged), "streets": len(streets), "provinces": len(provinces)}
    return counts


def _month_words() -> dict[str, int]:
    from nlp.locations import _MONTH_WORDS, _NUMBER_WORDS

    return {(_MONTH_WORDS.get(k) or w): k for k, w in _NUMBER_WORDS.items() if k <= 12}


def _date_street(name: str) -> str | None:
    """The numeric form of a street named after a date: "3/2", "30 - 4" → "30/4", "Ba Mươi Tháng
    Tư" → "30/4"; None for other names (and for "Cách Mạng Tháng Tám", whose date is a part)."""
    m = re.fullmatch(r"(\d{1,2})\s*[/-]\s*(\d{1,2})", name.strip())
    if m:
        day, month = int(m.group(1)), int(m.group(2))
        return f"{day}/{month}" if 1 <= day <= 31 and 1 <= month <= 12 else None
    m = re.fullmatch(r"(.+?) Tháng (.+)", name.strip())
    if m:
        from nlp.locations import _NUMBER_WORDS

        days, months = {w: k for k, w in _NUMBER_WORDS.items()}, _month_words()
        if m.group(1) in days and m.group(2) in months:
            return f"{days[m.group(1)]}/{months[m.group(2)]}"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--src", type=Path, default=DEFAULT_SRC)
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    if not args.src.is_dir():
        raise SystemExit(f"source folder not found: {args.src}")
    print(build(args.src, args.out))


if __name__ == "__main__":
    main()
