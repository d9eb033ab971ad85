"""``$connect`` REQUEST authorizer: ``?token=<Cognito JWT>`` -> an Allow policy with the caller.

A refused token raises ``Unauthorized``, which API Gateway turns into a 401 on the handshake;
the identity source (``route.request.querystring.token``) makes API Gateway refuse a missing
token with 401 before this function runs. The verified ``sub`` and groups reach the route
functions as ``requestContext.authorizer``.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from realtime.auth import Identity, TokenError, TokenVerifier

__all__ = ["handler", "policy", "verifier"]

logger = Logger()


@cache
def verifier() -> TokenVerifier:
    """One per warm Lambda: its PyJWKClient caches the pool's keys between invocations."""
    import jwt

    jwks = jwt.PyJWKClient(
        os.environ["JWKS_URL"], cache_keys=True, cache_jwk_set=True, lifespan=3600, timeout=5
    )
    audiences = [a for a in os.environ["USER_POOL_CLIENT_IDS"].split(",") if a]
    return TokenVerifier(os.environ["USER_POOL_ISSUER"], audiences, jwks)


def policy(identity: Identity, method_arn: str) -> dict[str, Any]:
    return {
        "principalId": identity.sub,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": method_arn}],
        },
        # context values must be strings, numbers or booleans
        "context": {"sub": identity.sub, "groups": ",".join(identity.groups)},
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    token = (event.get("queryStringParameters") or {}).get("token")
    try:
        identity = verifier().verify(token)
    except TokenError as exc:
        logger.info("connection refused", extra={"reason": str(exc)})
        raise Exception("Unauthorized") from None  # noqa: TRY002 - the exact message API Gateway maps to 401
    return policy(identity, event["methodArn"])
