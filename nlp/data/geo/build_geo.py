"""Build nlp/data/geo/hcmc_wards.geojson.gz from the per-ward GeoJSON of
thanglequoc/vietnamese-provinces-database (MIT), json/geojson/79_ho_chi_minh/wards/*.geojson.

Offline, build-time only (needs shapely, which the service does not): each ward's boundary is
simplified (Douglas-Peucker, topology preserved), coordinates rounded to 4 decimals (~11 m), and
the former district-level units are dissolved from their wards (a ward formed from several former
units is counted in the first one the gazetteer names, so the overlay is ward-granular).

    python nlp/data/geo/build_geo.py /path/to/79_ho_chi_minh/wards
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path
from typing import Any

from shapely.geometry import mapping, shape
from shapely.ops import unary_union

from nlp.areas import load_areas

OUT = Path(__file__).resolve().parent / "hcmc_wards.geojson.gz"
TOLERANCE_WARD = 0.0004  # degrees, ~45 m
TOLERANCE_FD = 0.0006
DECIMALS = 4


def _round(obj: Any) -> Any:
    if isinstance(obj, float):
        return round(obj, DECIMALS)
    if isinstance(obj, list | tuple):
        return [_round(x) for x in obj]
    return obj


def _geometry(geom: Any, tolerance: float) -> dict[str, Any]:
    simple = geom.simplify(tolerance, preserve_topology=True)
    data = mapping(simple)
    return {"type": data["type"], "coordinates": _round(data["coordinates"])}


def build(source: Path) -> dict[str, Any]:
    """The derived FeatureCollection: 168 ward features, then one feature per former unit."""
    areas = load_areas()
    features: list[dict[str, Any]] = []
    by_fd: dict[str, list[Any]] = {}
    seen: set[str] = set()
    for path in sorted(source.glob("*.geojson")):
        raw = json.loads(path.read_text(encoding="utf-8"))
        feat = raw["features"][0]
        code = str(feat["properties"]["code"])
        area = areas.get(f"w:{code}")
        if area is None:
            raise SystemExit(f"{path.name}: ward code {code} is not in the gazetteer")
        geom = shape(feat["geometry"])
        if not geom.is_valid:
            geom = geom.buffer(0)
        seen.add(area.id)
        fd = area.related_ids[0] if area.related_ids else None
        if fd:
            by_fd.setdefault(fd, []).append(geom)
        features.append({"type": "Feature", "id": area.id,
                         "properties": {"id": area.id, "name": area.name, "level": "ward",
                                        "fd": fd, "area_km2": feat["properties"].get("areaKm2")},
                         "geometry": _geometry(geom, TOLERANCE_WARD)})
    missing = {a.id for a in areas.by_level("ward")} - seen
    if missing:
        raise SystemExit(f"wards without a boundary: {sorted(missing)}")
    for fd_id, geoms in sorted(by_fd.items()):
        fd_area = areas.get(fd_id)
        assert fd_area is not None
        merged = unary_union([g.buffer(0.00005) for g in geoms]).buffer(-0.00005)
        features.append({"type": "Feature", "id": fd_id,
                         "properties": {"id": fd_id, "name": fd_area.name, "level": "former_district",
                                        "former_province": fd_area.former_province},
                         "geometry": _geometry(merged, TOLERANCE_FD)})
    return {"type": "FeatureCollection", "features": features}


def main() -> None:
    source = Path(sys.argv[1])
    collection = build(source)
    text = json.dumps(collection, ensure_ascii=False, separators=(",", ":"))
    with gzip.open(OUT, "wt", encoding="utf-8") as fh:
        fh.write(text)
    print(f"{OUT}: {len(collection['features'])} features, {len(text)} bytes raw, "
          f"{OUT.stat().st_size} gzipped")


if __name__ == "__main__":
    main()
