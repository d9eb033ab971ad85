"""Verifying a Cognito JWT for the WebSocket ``$connect`` authorizer.

API Gateway's built-in JWT authorizer exists only for HTTP APIs; a WebSocket API needs a Lambda
REQUEST authorizer, so the checks it would make are made here with PyJWT: RS256 signature
against the pool's JWKS (fetched once per warm Lambda, refetched for an unknown ``kid``),
issuer, audience (``aud`` of ID tokens or ``client_id`` of access tokens), expiry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jwt

__all__ = ["Identity", "TokenError", "TokenVerifier"]

ALGORITHMS = ("RS256",)  # what Cognito signs with; "none" and HMAC are never accepted


class TokenError(Exception):
    """The token is missing, malformed, not signed by the pool, expired or not for this client."""


@dataclass(frozen=True, slots=True)
class Identity:
    sub: str
    groups: tuple[str, ...]

    @property
    def is_staff(self) -> bool:
        return "staff" in self.groups


class TokenVerifier:
    """Checks tokens of one user pool for a set of app clients.

    ``jwks`` is a ``jwt.PyJWKClient`` (or anything with ``get_signing_key_from_jwt``); its cache
    lives as long as the verifier, i.e. the warm Lambda.
    """

    def __init__(self, issuer: str, audiences: Sequence[str], jwks: Any, *, leeway: int = 0):
        if not issuer or not audiences:
            raise ValueError("an issuer and at least one audience are required")
        self.issuer = issuer
        self.audiences = tuple(audiences)
        self.jwks = jwks
        self.leeway = leeway

    def verify(self, token: str | None) -> Identity:
        if not token or not isinstance(token, str) or len(token) > 8192:
            raise TokenError("missing token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError(f"malformed token: {exc}") from None
        if header.get("alg") not in ALGORITHMS:
            raise TokenError(f"algorithm {header.get('alg')!r} is not accepted")
        try:
            key = self.jwks.get_signing_key_from_jwt(token)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=list(ALGORITHMS),
                issuer=self.issuer,
                leeway=self.leeway,
                options={"require": ["exp", "iss", "sub"], "verify_aud": False},
            )
        except jwt.PyJWKClientConnectionError:
            raise  # the JWKS could not be fetched: an outage, not a refusal (500, the client retries)
        except jwt.PyJWTError as exc:
            raise TokenError(str(exc)) from None
        # Cognito ID tokens carry the client in ``aud``, access tokens in ``client_id``.
        use = claims.get("token_use")
        if use not in (None, "id", "access"):
            raise TokenError(f"token_use {use!r} is not accepted")
        audience = claims.get("aud", claims.get("client_id"))
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(a in self.audiences for a in audiences):
            raise TokenError("token is not for this client")
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise TokenError("token has no subject")
        groups = claims.get("cognito:groups") or []
        if isinstance(groups, str):
            groups = groups.split()
        return Identity(sub=sub, groups=tuple(str(g) for g in groups))
