"""Sign-in, tokens and the signing key: tampered tokens (signature changed, alg none, expired,
revoked) answer 401; failed sign-ins are rate-limited; `user add` reads the password from stdin."""
from __future__ import annotations

import base64
import json
import os
import stat
import time
from pathlib import Path

import jwt
import pytest
from fastapi.testclient import TestClient

from conftest import PASSWORD, Api, add_users, cli, make_settings
from medvision_server import create_app


def b64(d: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(d).encode()).rstrip(b"=").decode()


def test_login_me_logout(api: Api) -> None:
    r = api.c.post("/api/v1/auth/token", data={"username": "alice", "password": PASSWORD})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] > 0
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert {"exp", "iat", "sub", "role", "jti"} <= set(claims)
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "HS256"
    h = {"Authorization": f"Bearer {body['access_token']}"}
    assert api.c.get("/api/v1/auth/me", headers=h).json() == {"name": "alice",
                                                             "role": "clinician"}
    assert api.c.post("/api/v1/auth/logout", headers=h).status_code == 204
    r = api.c.get("/api/v1/auth/me", headers=h)
    assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_wrong_password_and_unknown_user(api: Api) -> None:
    for user, pw in (("alice", "wrong password"), ("nobody", PASSWORD)):
        r = api.c.post("/api/v1/auth/token", data={"username": user, "password": pw})
        assert r.status_code == 401
        assert r.json()["detail"] == "wrong user name or password"  # same for both


def test_tampered_tokens_401(api: Api) -> None:
    good = api.token("alice")
    head, payload, sig = good.split(".")
    claims = jwt.decode(good, options={"verify_signature": False})
    flipped = sig[:-2] + ("AA" if sig[-2:] != "AA" else "BB")
    admin_claims = dict(claims, role="admin", sub=claims["sub"])
    forged_payload = ".".join([head, b64(admin_claims), sig])
    none_tok = ".".join([b64({"alg": "none", "typ": "JWT"}), b64(admin_claims), ""])
    other_key = jwt.encode(admin_claims, "not-the-server-key" * 4, algorithm="HS256")
    expired = jwt.encode(dict(claims, iat=int(time.time()) - 7200, exp=int(time.time()) - 3600),
                         api.app.state.settings.secret_file.read_text().strip().encode(),
                         algorithm="HS256")
    no_jti = jwt.encode({k: v for k, v in claims.items() if k != "jti"},
                        api.app.state.settings.secret_file.read_text().strip().encode(),
                        algorithm="HS256")
    cases = {"signature changed": ".".join([head, payload, flipped]),
             "payload changed": forged_payload, "alg none": none_tok,
             "other key": other_key, "expired": expired, "no jti": no_jti,
             "garbage": "abc.def", "empty": ""}
    for what, tok in cases.items():
        r = api.c.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {tok}"})
        assert r.status_code == 401, (what, r.status_code, r.text)
    assert "expired" in api.c.get("/api/v1/auth/me", headers={
        "Authorization": f"Bearer {expired}"}).json()["detail"]
    # The good token still works; logout revokes exactly it.
    h = {"Authorization": f"Bearer {good}"}
    assert api.c.get("/api/v1/auth/me", headers=h).status_code == 200
    assert api.c.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert api.c.get("/api/v1/studies", headers=h).status_code == 401
    assert api.c.get("/api/v1/auth/me", headers=api.h("bob")).status_code == 200


def test_login_rate_limit(api: Api) -> None:
    admin = api.h("root")
    for _ in range(5):
        r = api.c.post("/api/v1/auth/token", data={"username": "bob", "password": "nope nope"})
        assert r.status_code == 401
    r = api.c.post("/api/v1/auth/token", data={"username": "bob", "password": PASSWORD})
    assert r.status_code == 429 and int(r.headers["Retry-After"]) > 0
    assert "too many failed sign-ins" in r.json()["detail"]
    # Other accounts from the same address still sign in (the address limit is higher).
    assert api.c.post("/api/v1/auth/token", data={"username": "alice", "password": PASSWORD}
                      ).status_code == 200
    rows = api.c.get("/api/v1/audit", headers=admin).json()
    outcomes = [x["outcome"] for x in rows if x["action"] == "login" and x["user"] == "bob"]
    assert outcomes.count("failed") == 5 and "rate-limited" in outcomes


def test_secret_file_0600_and_refused_when_readable(tmp_path: Path) -> None:
    s = make_settings(tmp_path / "data")
    create_app(s, start_jobs=False)
    mode = stat.S_IMODE(os.stat(s.secret_file).st_mode)
    assert mode == 0o600
    key = s.secret_file.read_text().strip()
    assert len(key) >= 64
    create_app(s, start_jobs=False)  # second start: the same key
    assert s.secret_file.read_text().strip() == key
    os.chmod(s.secret_file, 0o644)
    with pytest.raises(PermissionError, match="chmod 600"):
        create_app(s, start_jobs=False)


def test_role_change_applies_to_issued_tokens(api: Api) -> None:
    h = api.h("bob")
    users = api.c.get("/api/v1/users", headers=api.h("root")).json()
    bob = next(u for u in users if u["name"] == "bob")
    r = api.c.patch(f"/api/v1/users/{bob['id']}", json={"active": False},
                    headers=api.h("root"))
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.c.get("/api/v1/auth/me", headers=h).status_code == 401


def test_user_add_cli_reads_stdin(tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = cli("user", "add", "dana", "--role", "radiologist", "--data", str(data),
            stdin="a long password\n")
    assert r.returncode == 0, r.stderr
    assert "a long password" not in r.stdout + r.stderr
    r = cli("user", "add", "dana", "--role", "admin", "--data", str(data), stdin="x" * 9 + "\n")
    assert r.returncode == 1 and "exists" in r.stderr
    r = cli("user", "add", "eve", "--role", "clinician", "--data", str(data), stdin="short\n")
    assert r.returncode == 2 and "at least 8" in r.stderr
    app = create_app(make_settings(data), start_jobs=False)
    with TestClient(app) as c:
        r = c.post("/api/v1/auth/token", data={"username": "dana",
                                               "password": "a long password"})
        assert r.status_code == 200
        tok = r.json()["access_token"]
        assert jwt.decode(tok, options={"verify_signature": False})["role"] == "radiologist"
    r = cli("audit", "verify", "--data", str(data))
    assert r.returncode == 0 and "intact" in r.stdout
