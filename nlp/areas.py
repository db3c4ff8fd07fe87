"""The areas of Ho Chi Minh City at every level: the city, former district-level units, current wards.

Since 1 July 2025 the city (now including former Bình Dương and Bà Rịa – Vũng Tàu) has no district level;
it has 168 wards/communes/special zone. Residents still think in the former districts, so an area is any of:
- "hcmc": the city;
- "fd:<slug>": a former district-level unit (the 22 of old HCMC, e.g. "fd:quan-7", "fd:thu-duc", and those
  of the two merged provinces, e.g. "fd:thu-dau-mot", with `former_province` set);
- "w:<5-digit code>": a current ward/commune, linked (`related_ids`) to the former districts it was
  formed from.

Data: nlp/data/gazetteer/areas.json.gz, built by nlp/build_gazetteer.py (sources in SOURCES.md there).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from langnghe.records import CITY_AREA_ID

DATA_DIR = Path(__file__).resolve().parent / "data" / "gazetteer"
LEVELS = ("city", "former_district", "ward")

# The 22 former HCMC district-level units, as GUIDE.md names them (the values of Location.former_district).
HCMC_FORMER_DISTRICTS: tuple[str, ...] = (
    "Quận 1", "Quận 3", "Quận 4", "Quận 5", "Quận 6", "Quận 7", "Quận 8", "Quận 10", "Quận 11", "Quận 12",
    "Bình Thạnh", "Gò Vấp", "Phú Nhuận", "Tân Bình", "Tân Phú", "Bình Tân", "Thủ Đức", "Củ Chi",
    "Hóc Môn", "Bình Chánh", "Nhà Bè", "Cần Giờ",
)


@dataclass
class Area:
    """One area at any level; `related_ids` links a ward to the former districts it was formed from."""

    id: str
    name: str
    level: str  # "city" | "former_district" | "ward"
    kind: str  # "thành phố", "quận", "huyện", "thị xã", "phường", "xã", "đặc khu"
    former_province: str | None = None  # "Bình Dương", "Bà Rịa – Vũng Tàu" or None (old HCMC)
    parent_ids: list[str] = field(default_factory=list)
    related_ids: list[str] = field(default_factory=list)
    predecessors: str = ""  # official text naming the units merged into a ward

    @property
    def full_name(self) -> str:
        """'Phường Sài Gòn', 'Quận 7' (numbered names already carry their kind), 'Huyện Củ Chi'."""
        if self.level == "former_district" and self.name.startswith("Quận "):
            return self.name
        return f"{self.kind.capitalize()} {self.name}"


class AreaIndex:
    """Lookup over all areas; built once by `load_areas()`."""

    def __init__(self, areas: list[Area]) -> None:
        self._by_id = {a.id: a for a in areas}
        if len(self._by_id) != len(areas):
            raise ValueError("duplicate area ids in the gazetteer")
        self._by_level: dict[str, list[Area]] = {level: [] for level in LEVELS}
        for area in areas:
            if area.level not in self._by_level:
                raise ValueError(f"area {area.id}: unknown level {area.level!r}")
            self._by_level[area.level].append(area)
        self._fd_by_name = {a.name: a for a in self._by_level["former_district"]}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, area_id: object) -> bool:
        return area_id in self._by_id

    def get(self, area_id: str) -> Area | None:
        """The area with this id, or None."""
        return self._by_id.get(area_id)

    def all(self) -> list[Area]:
        """Every area: city, former districts, wards."""
        return list(self._by_id.values())

    def by_level(self, level: str) -> list[Area]:
        """Areas of one level ("city", "former_district", "ward")."""
        if level not in self._by_level:
            raise ValueError(f"unknown level {level!r}; expected one of {LEVELS}")
        return list(self._by_level[level])

    def former_district_by_name(self, name: str) -> Area | None:
        """'Bình Thạnh' → the fd:binh-thanh area (names as in GUIDE.md; also the merged provinces' units)."""
        return self._fd_by_name.get(name)

    def wards_of_former_district(self, fd_id: str) -> list[Area]:
        """Current wards formed (wholly or partly) from this former district."""
        area = self._require(fd_id, "former_district")
        return [self._by_id[w] for w in area.related_ids]

    def former_districts_of_ward(self, w_id: str) -> list[Area]:
        """Former districts this current ward was formed from (usually one)."""
        area = self._require(w_id, "ward")
        return [self._by_id[f] for f in area.related_ids]

    def _require(self, area_id: str, level: str) -> Area:
        area = self._by_id.get(area_id)
        if area is None:
            raise KeyError(f"unknown area id {area_id!r}")
        if area.level != level:
            raise ValueError(f"{area_id!r} is a {area.level}, not a {level}")
        return area


@lru_cache(maxsize=1)
def load_areas() -> AreaIndex:
    """All areas, loaded once from the committed gazetteer."""
    with gzip.open(DATA_DIR / "areas.json.gz", "rt", encoding="utf-8") as fh:
        raw = json.load(fh)
    areas = [Area(id=r["id"], name=r["name"], level=r["level"], kind=r["kind"],
                  former_province=r.get("former_province"), parent_ids=list(r.get("parent_ids") or []),
                  related_ids=list(r.get("related_ids") or []), predecessors=r.get("predecessors", ""))
             for r in raw]
    index = AreaIndex(areas)
    if index.get(CITY_AREA_ID) is None:
        raise ValueError("gazetteer has no city area")
    return index
