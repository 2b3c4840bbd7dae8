"""POST /api/v1/auth/token (OAuth2 password form), /logout (revokes the token's jti), GET /me."""
from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response, status
from fastapi.security import OAuth2PasswordRequestForm
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..db import RevokedToken, User
from ..schemas import Me, Token
from ..security import Principal, current_principal, get_db, verify_password

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def client_of(request: Request) -> str:
    return request.client.host if request.client else ""


@router.post("/token", response_model=Token)
def login(request: Request, form: OAuth2PasswordRequestForm = Depends(),
          db: Session = Depends(get_db)) -> Token:
    app = request.app
    client = client_of(request)
    name = form.username.strip()[:64]
    account_key, client_key = f"user:{name.lower()}", f"client:{client}"
    wait = app.state.limiter.retry_after(account_key, client_key)
    if wait > 0:
        app.state.audit.append(user=name, role="", action="login", outcome="rate-limited",
                               client=client)
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS,
                            detail=f"too many failed sign-ins: try again in {int(wait) + 1} s",
                            headers={"Retry-After": str(int(wait) + 1)})
    user = db.execute(select(User).where(User.name == name)).scalar_one_or_none()
    ok = verify_password(user.password_hash if user else None, form.password)
    if not ok or user is None or not user.active:
        app.state.limiter.failed(account_key, client_key)
        app.state.audit.append(user=name, role="", action="login", outcome="failed",
                               client=client)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED,
                            detail="wrong user name or password",
                            headers={"WWW-Authenticate": "Bearer"})
    app.state.limiter.succeeded(account_key)
    token, ttl = app.state.tokens.issue(user)
    app.state.audit.append(user=user.name, role=user.role, action="login", client=client)
    return Token(access_token=token, expires_in=ttl)


@router.post("/logout", status_code=204, response_class=Response)
def logout(request: Request, p: Principal = Depends(current_principal),
           db: Session = Depends(get_db)) -> Response:
    if db.get(RevokedToken, p.jti) is None:
        db.add(RevokedToken(jti=p.jti, expires_at=p.exp))
        db.commit()
    request.app.state.audit.append(user=p.name, role=p.role, action="logout",
                                   client=client_of(request))
    return Response(status_code=204)


@router.get("/me", response_model=Me)
def me(p: Principal = Depends(current_principal)) -> Me:
    return Me(name=p.name, role=p.role)
