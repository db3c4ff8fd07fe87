"""Ward boundaries as SVG: a choropleth of the 168 current wards with the former district-level
units drawn over them, projected once and cached (no map tiles, nothing fetched).

Data: nlp/data/geo/hcmc_wards.geojson.gz (see SOURCES.md there; MIT, thanglequoc/vietnamese-provinces-database).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from markupsafe import Markup, escape

GEO_FILE = Path(__file__).resolve().parents[2] / "nlp" / "data" / "geo" / "hcmc_wards.geojson.gz"
CON_DAO = "w:26732"  # the special zone, ~180 km offshore: drawn in an inset
VIEWS = ("core", "all")
CLASSES = 6  # colour classes: 0 = no mention, 1..5 = a log scale up to the maximum

Ring = list[tuple[float, float]]


@dataclass(frozen=True)
class Shape:
    """One area's outline: id, name, level, the former unit it is drawn with, and its rings."""

    id: str
    name: str
    level: str
    fd: str | None
    former_province: str | None
    polygons: tuple[tuple[tuple[tuple[float, float], ...], ...], ...]


@dataclass(frozen=True)
class MapFrame:
    """A projected view: shapes as SVG path data in a width × height box."""

    view: str
    width: int
    height: int
    wards: tuple[tuple[str, str, str], ...]  # (id, name, path d)
    districts: tuple[tuple[str, str, str, float, float, int], ...]  # (id, name, d, x, y, font px; 0 = no label)
    inset: tuple[str, str, str, str] | None  # (id, name, d, inset box rect "x y w h")


@lru_cache(maxsize=1)
def load_shapes() -> tuple[Shape, ...]:
    """Every ward and former unit outline from the committed GeoJSON."""
    with gzip.open(GEO_FILE, "rt", encoding="utf-8") as fh:
        data = json.load(fh)
    shapes: list[Shape] = []
    for feat in data["features"]:
        props = feat["properties"]
        geom = feat["geometry"]
        polys = geom["coordinates"] if geom["type"] == "MultiPolygon" else [geom["coordinates"]]
        shapes.append(Shape(
            id=props["id"], name=props["name"], level=props["level"], fd=props.get("fd"),
            former_province=props.get("former_province"),
            polygons=tuple(tuple(tuple((float(x), float(y)) for x, y in ring) for ring in poly)
                           for poly in polys),
        ))
    return tuple(shapes)


def ward_ids() -> list[str]:
    """Ids of the wards that have a boundary."""
    return [s.id for s in load_shapes() if s.level == "ward"]


def _bbox(shapes: Iterable[Shape]) -> tuple[float, float, float, float]:
    xs: list[float] = []
    ys: list[float] = []
    for s in shapes:
        for poly in s.polygons:
            for ring in poly:
                xs.extend(p[0] for p in ring)
                ys.extend(p[1] for p in ring)
    return min(xs), min(ys), max(xs), max(ys)


class _Projection:
    """Equirectangular at the box's mid latitude, fitted into (x0, y0, width, height)."""

    def __init__(self, bbox: tuple[float, float, float, float], x0: float, y0: float,
                 width: float, height: float) -> None:
        lon0, lat0, lon1, lat1 = bbox
        self.kx = math.cos(math.radians((lat0 + lat1) / 2))
        span_x, span_y = (lon1 - lon0) * self.kx, lat1 - lat0
        self.scale = min(width / span_x, height / span_y)
        self.lon0, self.lat1 = lon0, lat1
        self.x0 = x0 + (width - span_x * self.scale) / 2
        self.y0 = y0 + (height - span_y * self.scale) / 2

    def __call__(self, lon: float, lat: float) -> tuple[float, float]:
        return (self.x0 + (lon - self.lon0) * self.kx * self.scale,
                self.y0 + (self.lat1 - lat) * self.scale)

    def path(self, shape: Shape) -> str:
        parts: list[str] = []
        for poly in shape.polygons:
            for ring in poly:
                pts: list[str] = []
                last = ""
                for lon, lat in ring:
                    x, y = self(lon, lat)
                    point = f"{x:.1f} {y:.1f}"
                    if point != last:  # drop points that project onto the same tenth of a pixel
                        pts.append(point)
                        last = point
                if len(pts) >= 3:
                    parts.append("M" + "L".join(pts) + "Z")
        return "".join(parts)

    def width_px(self, shape: Shape) -> float:
        xs = [self(lon, lat)[0] for poly in shape.polygons for lon, lat in poly[0]]
        return max(xs) - min(xs)

    def centroid(self, shape: Shape) -> tuple[float, float]:
        biggest = max((ring for poly in shape.polygons for ring in poly[:1]), key=len)
        xs, ys = zip(*(self(lon, lat) for lon, lat in biggest), strict=True)
        return sum(xs) / len(xs), sum(ys) / len(ys)


@lru_cache(maxsize=4)
def frame(view: str = "core", width: int = 900) -> MapFrame:
    """The projected map: "core" = the wards of the 22 former HCMC districts, "all" = the whole
    city (with Côn Đảo in an inset)."""
    if view not in VIEWS:
        raise ValueError(f"unknown map view {view!r}; expected one of {VIEWS}")
    shapes = load_shapes()
    fds = {s.id: s for s in shapes if s.level == "former_district"}
    wards = [s for s in shapes if s.level == "ward"]
    if view == "core":
        wards = [w for w in wards if w.fd in fds and fds[w.fd].former_province is None]
        districts = [d for d in fds.values() if d.former_province is None]
        main = wards
    else:
        districts = [d for d in fds.values() if d.id != "fd:con-dao"]
        main = [w for w in wards if w.id != CON_DAO]
    bbox = _bbox(main)
    aspect = (bbox[3] - bbox[1]) / ((bbox[2] - bbox[0]) * math.cos(math.radians((bbox[1] + bbox[3]) / 2)))
    height = int(round(width * aspect))
    proj = _Projection(bbox, 4, 4, width - 8, height - 8)
    ward_paths = tuple((w.id, w.name, proj.path(w)) for w in main)
    district_paths = tuple((d.id, d.name, proj.path(d), *proj.centroid(d), _label_size(proj.width_px(d), d.name))
                           for d in districts)
    inset = None
    con_dao = next((w for w in wards if w.id == CON_DAO), None)
    if view == "all" and con_dao is not None:
        box = (width - 130.0, height - 110.0, 120.0, 100.0)
        inset_proj = _Projection(_bbox([con_dao]), box[0] + 6, box[1] + 6, box[2] - 12, box[3] - 12)
        inset = (con_dao.id, con_dao.name, inset_proj.path(con_dao),
                 " ".join(f"{v:.0f}" for v in box))
    return MapFrame(view, width, height, ward_paths, district_paths, inset)


def _label_size(width_px: float, name: str) -> int:
    """A label's font size that fits the outline's width (0: too small to label)."""
    for size in (11, 9, 8):
        if width_px >= 0.45 * size * len(name):
            return size
    return 0


def colour_class(value: int, maximum: int) -> int:
    """0 for nothing, else 1..5 on a log scale of value / maximum."""
    if value <= 0 or maximum <= 0:
        return 0
    if maximum == 1:
        return CLASSES - 1
    share = math.log1p(value) / math.log1p(maximum)
    return max(1, min(CLASSES - 1, math.ceil(share * (CLASSES - 1))))


def legend_bins(maximum: int) -> list[tuple[int, int, int]]:
    """(class, low, high) value ranges of the colour classes for a given maximum."""
    bins: list[tuple[int, int, int]] = [(0, 0, 0)]
    if maximum <= 0:
        return bins
    low = 1
    for cls in range(1, CLASSES):
        high = max((v for v in range(low, maximum + 1) if colour_class(v, maximum) == cls), default=0)
        if high:
            bins.append((cls, low, high))
            low = high + 1
    return bins


def choropleth_svg(values: Mapping[str, int], *, view: str = "core", width: int = 900,
                   title: str = "", href: str | None = "/?area={id}", labels: bool = True,
                   unit: str = "") -> Markup:
    """An inline SVG map: wards coloured by `values` (area id → count), former units outlined
    and named; each ward links to `href` (with {id}) and carries a tooltip."""
    fr = frame(view, width)
    shown = [values.get(wid, 0) for wid, _, _ in fr.wards]
    if fr.inset:
        shown.append(values.get(fr.inset[0], 0))
    maximum = max(shown, default=0)
    out: list[str] = [
        f'<svg class="map" viewBox="0 0 {fr.width} {fr.height}" width="100%" role="img" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]

    def ward(wid: str, name: str, d: str) -> str:
        value = values.get(wid, 0)
        tip = escape(f"{name}: {value} {unit}".strip())
        body = (f'<path d="{d}" class="w q{colour_class(value, maximum)}" data-id="{wid}" '
                f'data-value="{value}"><title>{tip}</title></path>')
        if href:
            return f'<a href="{escape(href.format(id=wid))}">{body}</a>'
        return body

    out.append('<g class="wards">')
    out.extend(ward(wid, name, d) for wid, name, d in fr.wards)
    out.append("</g>")
    out.append('<g class="districts" aria-hidden="true">')
    out.extend(f'<path d="{d}" class="fd" data-id="{fid}"><title>{escape(name)}</title></path>'
               for fid, name, d, _, _, _ in fr.districts)
    out.append("</g>")
    if labels:
        out.append('<g class="fd-labels" aria-hidden="true">')
        out.extend(f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}">{escape(name)}</text>'
                   for _, name, _, x, y, size in fr.districts if size)
        out.append("</g>")
    if fr.inset:
        wid, name, d, rect = fr.inset
        x, y, w, h = rect.split()
        out.append(f'<g class="inset"><rect x="{x}" y="{y}" width="{w}" height="{h}"/>'
                   f'{ward(wid, name, d)}<text x="{float(x) + 4:.0f}" y="{float(y) + 14:.0f}">'
                   f"{escape(name)}</text></g>")
    out.append("</svg>")
    return Markup("".join(out))


def as_geojson_features(values: Mapping[str, int]) -> dict[str, Any]:
    """The ward outlines as GeoJSON with the values as a property (for the map's JSON endpoint)."""
    features = []
    for s in load_shapes():
        coords = [[[list(p) for p in ring] for ring in poly] for poly in s.polygons]
        props: dict[str, Any] = {"id": s.id, "name": s.name, "level": s.level}
        if s.level == "ward":
            props["value"] = int(values.get(s.id, 0))
            props["former_district"] = s.fd
        features.append({"type": "Feature", "id": s.id, "properties": props,
                         "geometry": {"type": "MultiPolygon", "coordinates": coords}})
    return {"type": "FeatureCollection", "features": features}
