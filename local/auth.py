"""A local JWT issuer and the HTTP API JWT authorizer's checks.

Deployed, Cognito issues the tokens and API Gateway's JWT authorizer checks them. Locally the
runtime is the issuer: RS256 tokens shaped like Cognito ID tokens, with the issuer and audience
the template gives the authorizer (resolved to the local user pool and client ids), so handlers
see exactly the claims they would see deployed. The key pair is kept in ``.local/`` so tokens
survive a restart and ``make token`` can sign without the server.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = [
    "AuthError",
    "Authorizer",
    "JwtIssuer",
    "claims_for_event",
]

DEFAULT_TTL = 3600  # Cognito's default ID token validity


class AuthError(Exception):
    """The request is not authorized. ``status`` is what API Gateway answers (401 or 403)."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


class JwtIssuer:
    """Signs tokens with a persistent RSA key; publishes its JWKS."""

    def __init__(self, state_dir: Path, issuer: str, audience: str):
        self.issuer = issuer
        self.audience = audience
        state_dir.mkdir(parents=True, exist_ok=True)
        key_path = state_dir / "jwt-signing-key.pem"
        if key_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        else:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            key_path.chmod(0o600)
        assert isinstance(key, rsa.RSAPrivateKey)
        self._key = key
        self.public_key = key.public_key()
        pub = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        import hashlib

        self.kid = hashlib.sha256(pub).hexdigest()[:16]
        (state_dir / "auth.json").write_text(
            json.dumps({"issuer": issuer, "audience": audience, "kid": self.kid}, indent=2)
        )

    @classmethod
    def from_state(cls, state_dir: Path) -> JwtIssuer:
        """The issuer of a runtime that ran in this directory (for ``make token``)."""
        meta = json.loads((state_dir / "auth.json").read_text())
        return cls(state_dir, meta["issuer"], meta["audience"])

    def issue(
        self,
        sub: str,
        groups: Sequence[str] = (),
        *,
        scopes: Sequence[str] = (),
        expires_in: int = DEFAULT_TTL,
        extra: Mapping[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": self.issuer,
            "aud": self.audience,
            "token_use": "id",
            "cognito:username": sub,
            "auth_time": now,
            "iat": now,
            "exp": now + int(expires_in),
            "jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
        }
        if groups:
            claims["cognito:groups"] = list(groups)
        if scopes:
            claims["scope"] = " ".join(scopes)
        claims.update(extra or {})
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})

    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.public_key))
        jwk.update(kid=self.kid, alg="RS256", use="sig")
        return {"keys": [jwk]}


@dataclass(frozen=True)
class Authorizer:
    """An ``AWS::ApiGatewayV2::Authorizer`` of type JWT, checked as API Gateway checks it."""

    name: str
    issuer: str
    audiences: tuple[str, ...]
    identity_source: str = "$request.header.Authorization"

    def authorize(
        self,
        headers: Mapping[str, str],
        verifier: JwtIssuer,
        required_scopes: Iterable[str] = (),
    ) -> dict[str, Any]:
        """Claims of a valid token; AuthError(401) if missing/invalid, AuthError(403) on scopes."""
        header = self.identity_source.rsplit(".", 1)[-1].lower()
        raw = headers.get(header)
        if not raw:
            raise AuthError(401, "missing token")
        token = raw.strip()
        if token[:7].lower() == "bearer ":
            token = token[7:].strip()
        try:
            head = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthError(401, f"malformed token: {exc}") from exc
        if head.get("kid") != verifier.kid or head.get("alg") != "RS256":
            raise AuthError(401, "token not signed by the issuer's key")
        try:
            claims = jwt.decode(
                token,
                verifier.public_key,
                algorithms=["RS256"],
                issuer=self.issuer,
                options={"require": ["exp", "iss"], "verify_aud": False},
                leeway=0,
            )
        except jwt.PyJWTError as exc:
            raise AuthError(401, str(exc)) from exc
        # API Gateway accepts the audience in ``aud`` (ID tokens) or ``client_id`` (access tokens).
        aud = claims.get("aud", claims.get("client_id"))
        auds = aud if isinstance(aud, list) else [aud]
        if self.audiences and not any(a in self.audiences for a in auds):
            raise AuthError(401, "audience not allowed")
        required = list(required_scopes)
        if required:
            granted = set(str(claims.get("scope", claims.get("scp", ""))).split())
            if not granted.intersection(required):
                raise AuthError(403, "insufficient scope")
        return claims


def _render(value: Any) -> str:
    """API Gateway renders every claim as a string; arrays as ``[a b]``."""
    if isinstance(value, list):
        return "[" + " ".join(_render(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def claims_for_event(claims: Mapping[str, Any]) -> dict[str, Any]:
    """``requestContext.authorizer`` of a payload 2.0 event for these verified claims."""
    scopes = claims.get("scope", claims.get("scp"))
    return {
        "jwt": {
            "claims": {k: _render(v) for k, v in claims.items()},
            "scopes": str(scopes).split() if scopes else None,
        }
    }
