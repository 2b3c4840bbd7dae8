"""Passwords (argon2id), tokens (HS256 JWT, algorithm pinned), the signing secret (a 0600 file
made on first start), the failed-login limiter, and role checks as FastAPI dependencies."""
from __future__ import annotations

import os
import secrets
import stat
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Deque, Dict, Optional, Tuple

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHash, VerificationError, VerifyMismatchError
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from .db import RevokedToken, User

ALGORITHM = "HS256"
_hasher = PasswordHasher()  # stateless; argon2id with the library's defaults
# Verified against when the user does not exist, so both paths cost one argon2 hash.
_DUMMY_HASH = _hasher.hash("medvision-no-such-user")

oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("the password must have at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: Optional[str], password: str) -> bool:
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHash):
        return False


def load_or_create_secret(path: Path) -> bytes:
    """The HMAC key: 64 random bytes (hex) in a file created with mode 0600 (O_EXCL, so two
    first starts cannot both write one). A key file readable by others is refused."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise PermissionError(
                f"{path}: the token signing key is readable by others (mode {mode:04o}); "
                f"run chmod 600 {path}") from None
        key = path.read_text().strip()
        if len(key) < 64:
            raise ValueError(f"{path}: the token signing key is too short (delete the file to "
                             "make a new one; every token issued so far stops working)")
        return key.encode()
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(64) + "\n")
    return path.read_text().strip().encode()


@dataclass(frozen=True)
class Principal:
    user_id: int
    name: str
    role: str
    jti: str
    exp: float


class TokenService:
    def __init__(self, key: bytes, ttl_s: int):
        self._key = key
        self._ttl = ttl_s

    def issue(self, user: User) -> Tuple[str, int]:
        now = int(time.time())
        claims = {"sub": str(user.id), "name": user.name, "role": user.role, "iat": now,
                  "exp": now + self._ttl, "jti": secrets.token_hex(16)}
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), self._ttl

    def decode(self, token: str) -> dict:
        """Raises jwt.InvalidTokenError for a bad signature, another algorithm (``none``
        included), an expired token or a missing claim."""
        return jwt.decode(token, self._key, algorithms=[ALGORITHM],
                          options={"require": ["exp", "iat", "sub", "jti", "role"]})


class LoginLimiter:
    """Failed logins per account and per client address in a sliding window; past the limit
    the next attempts answer 429 until the window has moved on. In memory, per process."""

    def __init__(self, max_failures: int, window_s: float):
        self.max_failures, self.window_s = max_failures, window_s
        self._fails: Dict[str, Deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def _prune(self, key: str, now: float) -> Deque[float]:
        q = self._fails[key]
        while q and q[0] < now - self.window_s:
            q.popleft()
        return q

    def retry_after(self, account_key: str, client_key: str) -> float:
        """Seconds to wait: an account after max_failures, a client address (which may try
        many accounts) after 4 x max_failures."""
        now = time.time()
        waits = []
        with self._lock:
            for key, limit in ((account_key, self.max_failures),
                               (client_key, 4 * self.max_failures)):
                q = self._prune(key, now)
                if len(q) >= limit:
                    waits.append(q[-limit] + self.window_s - now)
        return max(waits) if waits else 0.0

    def failed(self, *keys: str) -> None:
        now = time.time()
        with self._lock:
            for k in keys:
                self._prune(k, now).append(now)

    def succeeded(self, account_key: str) -> None:
        with self._lock:
            self._fails.pop(account_key, None)


def _unauthorised(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail=detail,
                         headers={"WWW-Authenticate": "Bearer"})


def get_db(request: Request):  # type: ignore[no-untyped-def]
    """One session per request."""
    s = request.app.state.sessions()
    try:
        yield s
    finally:
        s.close()


def current_principal(request: Request, token: Optional[str] = Depends(oauth2_scheme),
                      db: Session = Depends(get_db)) -> Principal:
    if not token:
        raise _unauthorised("not signed in: send 'Authorization: Bearer <token>' "
                            "(POST /api/v1/auth/token gives one)")
    try:
        claims = request.app.state.tokens.decode(token)
    except jwt.ExpiredSignatureError:
        raise _unauthorised("the token has expired: sign in again") from None
    except jwt.InvalidTokenError:
        raise _unauthorised("the token is not valid: sign in again") from None
    if db.get(RevokedToken, str(claims["jti"])) is not None:
        raise _unauthorised("the token was revoked (signed out): sign in again")
    try:
        user = db.get(User, int(claims["sub"]))
    except (TypeError, ValueError):
        user = None
    if user is None or not user.active:
        raise _unauthorised("the account no longer exists or is disabled")
    # The role in the database wins: a changed role applies to tokens already issued.
    p = Principal(user.id, user.name, user.role, str(claims["jti"]), float(claims["exp"]))
    request.state.principal = p
    return p


def require(*roles: str) -> Callable[..., Principal]:
    def check(p: Principal = Depends(current_principal)) -> Principal:
        if p.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                detail=f"this needs the role {' or '.join(roles)}; "
                                f"'{p.name}' is {p.role}")
        return p
    return check
