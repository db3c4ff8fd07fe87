"""Dependencies shared by the routers: the store and the area catalogue, typed with `Annotated`."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from langnghe.records import CITY_AREA_ID
from storage.base import Store

log = logging.getLogger(__name__)


class AreaCatalog(Protocol):
    """What the API needs from nlp.areas.AreaIndex: areas with id, name, level, kind,
    former_province, parent_ids and related_ids."""

    def all(self) -> Iterable[Any]: ...

    def get(self, area_id: str) -> Any | None: ...


@dataclass
class _CityArea:
    id: str = CITY_AREA_ID
    name: str = "Thành phố Hồ Chí Minh"
    level: str = "city"
    kind: str = "thành phố"
    former_province: str | None = None
    parent_ids: list[str] = field(default_factory=list)
    related_ids: list[str] = field(default_factory=list)


class CityOnlyCatalog:
    """Fallback catalogue with the city alone, used when nlp.areas cannot be loaded."""

    def __init__(self) -> None:
        self._city = _CityArea()

    def all(self) -> list[Any]:
        return [self._city]

    def get(self, area_id: str) -> Any | None:
        return self._city if area_id == CITY_AREA_ID else None


def load_area_catalog() -> AreaCatalog:
    """The gazetteer's areas (nlp.areas.load_areas()); the city alone if it is unavailable."""
    try:
        from nlp.areas import load_areas
    except ImportError as exc:  # the gazetteer module is optional for the service to start
        log.warning("nlp.areas unavailable (%s): serving the city area only", exc)
        return CityOnlyCatalog()
    catalog: AreaCatalog = load_areas()
    return catalog


def get_store(request: Request) -> Store:
    """The store opened by the app (kept on app.state)."""
    store: Store = request.app.state.store
    return store


def get_areas(request: Request) -> AreaCatalog:
    """The area catalogue, loaded on first use and kept on app.state."""
    state = request.app.state
    if getattr(state, "areas", None) is None:
        state.areas = load_area_catalog()
    catalog: AreaCatalog = state.areas
    return catalog


StoreDep = Annotated[Store, Depends(get_store)]
AreasDep = Annotated[AreaCatalog, Depends(get_areas)]
