"""Account management (administrators only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Response
from pydantic import BaseModel, Field

from api.accounts_store import AccountError, User
from api.auth.deps import AccountsDep, AdminUser
from api.auth.models import Role
from api.deps import AreasDep

RecordId = Annotated[int, Path(ge=1, le=2**53, description="Record id")]

router = APIRouter(prefix="/api/v1/users", tags=["users"])


class UserOut(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    department: str | None
    area_id: str | None
    active: bool
    emerging_alerts: bool
    created_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, email=user.email, name=user.name, role=user.role,
                   department=user.department, area_id=user.area_id, active=user.active,
                   emerging_alerts=user.emerging_alerts, created_at=user.created_at,
                   last_login_at=user.last_login_at)


class UserIn(BaseModel):
    email: str = Field(max_length=254)
    password: str = Field(max_length=1024, description="At least 10 characters")
    role: Role
    name: str = Field(default="", max_length=200)
    department: str | None = Field(default=None, max_length=64, description="For role=department")
    area_id: str | None = Field(default=None, max_length=64, description="For role=area")
    emerging_alerts: bool | None = Field(default=None, description="E-mail emerging issues in scope "
                                         "(default: on for department and area accounts)")


class UserPatch(BaseModel):
    name: str | None = Field(default=None, max_length=200)
    role: Role | None = None
    department: str | None = Field(default=None, max_length=64)
    area_id: str | None = Field(default=None, max_length=64)
    active: bool | None = None
    emerging_alerts: bool | None = None
    password: str | None = Field(default=None, max_length=1024, description="Reset the password")


def _found(user: User | None) -> User:
    if user is None:
        raise HTTPException(404, detail="Không tìm thấy tài khoản / no such account")
    return user


@router.get("", response_model=list[UserOut], summary="List accounts")
def list_users(_: AdminUser, accounts: AccountsDep) -> list[UserOut]:
    return [UserOut.of(u) for u in accounts.list_users()]


@router.post("", response_model=UserOut, status_code=201, summary="Create an account",
             responses={400: {}, 409: {}})
def create_user(body: UserIn, _: AdminUser, accounts: AccountsDep, areas: AreasDep) -> UserOut:
    if accounts.get_user_by_email(body.email) is not None:
        raise HTTPException(409, detail="E-mail đã được dùng / e-mail already in use")
    try:
        user = accounts.create_user(body.email, body.password, body.role, name=body.name,
                                    department=body.department, area_id=body.area_id, areas=areas,
                                    emerging_alerts=body.emerging_alerts)
    except AccountError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    return UserOut.of(user)


@router.get("/{user_id}", response_model=UserOut, summary="One account", responses={404: {}})
def get_user(user_id: RecordId, _: AdminUser, accounts: AccountsDep) -> UserOut:
    return UserOut.of(_found(accounts.get_user(user_id)))


@router.patch("/{user_id}", response_model=UserOut, summary="Change an account",
              responses={400: {}, 404: {}})
def update_user(user_id: RecordId, body: UserPatch, admin: AdminUser, accounts: AccountsDep,
                areas: AreasDep) -> UserOut:
    """Change role, scope, name, alerts or status, or reset the password; a change of role or
    scope, a deactivation and a password reset end the account's sessions."""
    _found(accounts.get_user(user_id))
    if user_id == admin.user_id and (body.active is False or (body.role and body.role != Role.administrator)):
        raise HTTPException(400, detail="Không tự hạ quyền / you cannot demote or deactivate yourself")
    try:
        user = accounts.update_user(user_id, name=body.name, role=body.role, department=body.department,
                                    area_id=body.area_id, active=body.active,
                                    emerging_alerts=body.emerging_alerts, areas=areas)
        if body.password is not None:
            accounts.set_password(user_id, body.password)
    except AccountError as exc:
        raise HTTPException(400, detail=str(exc)) from exc
    return UserOut.of(user)


@router.delete("/{user_id}", status_code=204, summary="Delete an account", responses={400: {}, 404: {}})
def delete_user(user_id: RecordId, admin: AdminUser, accounts: AccountsDep) -> Response:
    if user_id == admin.user_id:
        raise HTTPException(400, detail="Không tự xóa tài khoản / you cannot delete yourself")
    if not accounts.delete_user(user_id):
        raise HTTPException(404, detail="Không tìm thấy tài khoản / no such account")
    return Response(status_code=204)
