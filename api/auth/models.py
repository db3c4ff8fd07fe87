"""Roles, the authenticated principal, and the data scope a principal may see."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from langnghe.records import CITY_AREA_ID, Issue, Mention
from storage.base import Filters


class Role(StrEnum):
    """What an account may do. `department` and `area` accounts see only their scope."""

    administrator = "administrator"  # everything, and manages accounts
    leadership = "leadership"  # sees everything, reads digests
    department = "department"  # one department's mentions and issues
    area = "area"  # one ward's or former district's mentions and issues
    communications = "communications"  # searches everything, saved searches, exports


ROLE_LABELS: dict[str, dict[str, str]] = {
    "vi": {"administrator": "Quản trị viên", "leadership": "Lãnh đạo", "department": "Sở, ngành",
           "area": "Địa phương", "communications": "Truyền thông"},
    "en": {"administrator": "Administrator", "leadership": "Leadership", "department": "Department",
           "area": "Area", "communications": "Communications"},
}

UNRESTRICTED_ROLES = frozenset({Role.administrator, Role.leadership, Role.communications})


@dataclass(frozen=True)
class Scope:
    """The mentions and issues a principal may see.

    ``unrestricted``: everything. Otherwise ``department`` (mentions/issues of that department)
    and/or ``area_ids`` (mentions whose areas include one of them; for a former-district account
    the district and the current wards formed from it). ``home_area`` is the account's own area.
    """

    unrestricted: bool = True
    department: str | None = None
    area_ids: frozenset[str] | None = None
    home_area: str | None = None

    @classmethod
    def everything(cls) -> Scope:
        return cls()

    def filters(self) -> Filters:
        """The scope as a storage filter (Haystack format) to AND with any query; {} = none."""
        if self.unrestricted:
            return {}
        conditions: list[Filters] = []
        if self.department is not None:
            conditions.append({"field": "department", "operator": "==", "value": self.department})
        if self.area_ids is not None:
            conditions.append({"field": "area", "operator": "in", "value": sorted(self.area_ids)})
        if not conditions:  # restricted but nothing granted: matches nothing
            return {"field": "issue_id", "operator": "in", "value": []}
        return {"operator": "AND", "conditions": conditions}

    def restrict(self, filters: Filters | None) -> Filters:
        """`filters` AND the scope."""
        mine = self.filters()
        if not mine:
            return filters or {}
        if not filters:
            return mine
        return {"operator": "AND", "conditions": [filters, mine]}

    def allows_mention(self, mention: Mention) -> bool:
        if self.unrestricted:
            return True
        if self.department is not None and mention.department != self.department:
            return False
        return self.area_ids is None or bool(self.area_ids.intersection(mention.areas))

    def allows_issue(self, issue: Issue | None) -> bool:
        """An issue is in scope when its department (department accounts) and one of its areas
        (area accounts) are."""
        if self.unrestricted:
            return True
        if issue is None:
            return False
        if self.department is not None and issue.department != self.department:
            return False
        return self.area_ids is None or bool(self.area_ids.intersection(issue.area_ids))

    def allows_area(self, area_id: str) -> bool:
        """Whether the ranking/top-10 of this area may be shown (area accounts: only areas inside
        their scope; department accounts see every area, filtered to their issues)."""
        return self.unrestricted or self.area_ids is None or area_id in self.area_ids

    def allows_areas(self, area_ids: Iterable[str]) -> bool:
        return self.unrestricted or self.area_ids is None or bool(self.area_ids.intersection(area_ids))

    def describe(self) -> dict[str, Any]:
        return {"unrestricted": self.unrestricted, "department": self.department,
                "area_id": self.home_area,
                "area_ids": sorted(self.area_ids) if self.area_ids is not None else None}


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account (through a session, a bearer token or an API key), or the
    anonymous principal when authentication is switched off (it sees everything)."""

    user_id: int | None
    email: str
    role: Role
    name: str = ""
    department: str | None = None
    area_id: str | None = None
    via: str = "session"  # "session" | "bearer" | "api_key" | "anonymous"
    session_hash: str | None = field(default=None, repr=False)
    scope: Scope = field(default_factory=Scope.everything)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.administrator

    @property
    def anonymous(self) -> bool:
        return self.via == "anonymous"


ANONYMOUS = Principal(user_id=None, email="", role=Role.leadership, name="anonymous", via="anonymous")


def scope_for(role: Role, department: str | None, area_id: str | None, areas: Any) -> Scope:
    """The scope of an account. `areas` is the area catalogue (nlp.areas.AreaIndex): a
    former district's scope holds the district and the wards formed from it."""
    if role in UNRESTRICTED_ROLES:
        return Scope.everything()
    if role == Role.department:
        return Scope(unrestricted=False, department=department)
    if role == Role.area:
        if not area_id:
            return Scope(unrestricted=False, area_ids=frozenset())
        if area_id == CITY_AREA_ID:  # a city-wide area account sees every area
            ids = {a.id for a in areas.all()} if areas is not None else {CITY_AREA_ID}
            return Scope(unrestricted=False, area_ids=frozenset(ids), home_area=area_id)
        ids = {area_id}
        area = areas.get(area_id) if areas is not None else None
        if area is not None and getattr(area, "level", None) == "former_district":
            ids.update(getattr(area, "related_ids", None) or [])
        return Scope(unrestricted=False, area_ids=frozenset(ids), home_area=area_id)
    return Scope(unrestricted=False, area_ids=frozenset())  # unknown role: nothing
