"""Areas: the city, its 22 former district-level units and its current wards/communes."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from api.auth.deps import CurrentUser
from api.deps import AreasDep
from api.schemas import AreaOut

router = APIRouter(prefix="/api/v1/areas", tags=["areas"])

Level = Literal["city", "former_district", "ward"]


@router.get("", response_model=list[AreaOut], summary="List areas")
def list_areas(
    user: CurrentUser,
    areas: AreasDep,
    level: Annotated[Level | None, Query(description="Only areas of this level")] = None,
) -> list[AreaOut]:
    """All areas (optionally of one level), with their old ↔ new mapping; an area account gets
    the areas of its scope."""
    return [AreaOut.from_area(a) for a in areas.all()
            if (level is None or a.level == level) and user.scope.allows_area(a.id)]
