"""Users (admin): list, add, change role / disable / reset password."""
from __future__ import annotations

from typing import List

from fastapi import APIRouter, Depends, HTTPException, Request, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import User
from ..schemas import UserIn, UserOut, UserPatch
from ..security import Principal, get_db, hash_password, require
from .auth import client_of

router = APIRouter(prefix="/api/v1/users", tags=["users"])
admin = require("admin")


def _out(u: User) -> UserOut:
    return UserOut(id=u.id, name=u.name, role=u.role, active=u.active, created_at=u.created_at)


@router.get("", response_model=List[UserOut])
def list_users(p: Principal = Depends(admin), db: Session = Depends(get_db)) -> List[UserOut]:
    return [_out(u) for u in db.execute(select(User).order_by(User.id)).scalars()]


@router.post("", response_model=UserOut, status_code=201)
def add_user(body: UserIn, request: Request, p: Principal = Depends(admin),
             db: Session = Depends(get_db)) -> UserOut:
    if db.execute(select(User).where(User.name == body.name)).scalar_one_or_none():
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"user '{body.name}' exists")
    u = User(name=body.name, role=body.role, password_hash=hash_password(body.password))
    db.add(u)
    db.commit()
    request.app.state.audit.append(user=p.name, role=p.role, action="user-add",
                                   obj=f"user:{u.name}:{u.role}", client=client_of(request))
    return _out(u)


@router.patch("/{user_id}", response_model=UserOut)
def change_user(user_id: int, body: UserPatch, request: Request, p: Principal = Depends(admin),
                db: Session = Depends(get_db)) -> UserOut:
    u = db.get(User, user_id)
    if u is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"no user {user_id}")
    changes = []
    if body.role is not None and body.role != u.role:
        u.role = body.role
        changes.append(f"role={body.role}")
    if body.active is not None and body.active != u.active:
        u.active = body.active
        changes.append("enabled" if body.active else "disabled")
    if body.password is not None:
        u.password_hash = hash_password(body.password)
        changes.append("password")
    db.commit()
    request.app.state.audit.append(user=p.name, role=p.role, action="user-change",
                                   obj=f"user:{u.name}:{','.join(changes) or 'none'}",
                                   client=client_of(request))
    return _out(u)
