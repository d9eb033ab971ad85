"""The local issuer and the JWT authorizer's checks (signature, issuer, audience, expiry, scopes)."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from local.auth import AuthError, Authorizer, JwtIssuer, claims_for_event

ISS = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_local"
AUD = "client123"


@pytest.fixture
def issuer(tmp_path):
    return JwtIssuer(tmp_path, ISS, AUD)


@pytest.fixture
def authorizer():
    return Authorizer(name="cognito", issuer=ISS, audiences=(AUD,))


def _headers(token):
    return {"authorization": f"Bearer {token}"}


def test_valid_token_gives_claims(issuer, authorizer):
    claims = authorizer.authorize(_headers(issuer.issue("alice", ["staff"])), issuer)
    assert claims["sub"] == "alice" and claims["cognito:groups"] == ["staff"]
    # API Gateway also accepts the token without the Bearer prefix.
    assert authorizer.authorize({"authorization": issuer.issue("bob")}, issuer)["sub"] == "bob"


@pytest.mark.parametrize("case", ["missing", "garbage", "expired", "wrong-issuer", "wrong-audience",
                                  "foreign-key", "hs256", "no-exp"])
def test_invalid_tokens_are_401(issuer, authorizer, case):
    now = int(time.time())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    base = {"sub": "alice", "iss": ISS, "aud": AUD, "iat": now, "exp": now + 60}
    headers = {
        "missing": {},
        "garbage": _headers("not-a-jwt"),
        "expired": _headers(issuer.issue("alice", expires_in=-5)),
        "wrong-issuer": _headers(jwt.encode({**base, "iss": "https://evil"}, issuer._key, "RS256",
                                            headers={"kid": issuer.kid})),
        "wrong-audience": _headers(jwt.encode({**base, "aud": "other"}, issuer._key, "RS256",
                                              headers={"kid": issuer.kid})),
        "foreign-key": _headers(jwt.encode(base, other, "RS256", headers={"kid": issuer.kid})),
        "hs256": _headers(jwt.encode(base, "secret-long-enough-for-hs256-0123456789", "HS256",
                                     headers={"kid": issuer.kid})),
        "no-exp": _headers(jwt.encode({k: v for k, v in base.items() if k != "exp"}, issuer._key, "RS256",
                                      headers={"kid": issuer.kid})),
    }[case]
    with pytest.raises(AuthError) as err:
        authorizer.authorize(headers, issuer)
    assert err.value.status == 401


def test_scopes_are_checked_with_403(issuer, authorizer):
    token = issuer.issue("alice", scopes=["items/read"])
    assert authorizer.authorize(_headers(token), issuer, ["items/read", "items/write"])
    with pytest.raises(AuthError) as err:
        authorizer.authorize(_headers(issuer.issue("alice")), issuer, ["items/read"])
    assert err.value.status == 403


def test_claims_are_rendered_as_api_gateway_does(issuer):
    claims = jwt.decode(issuer.issue("alice", ["staff", "ops"], scopes=["a", "b"]), options={"verify_signature": False})
    ctx = claims_for_event(claims)
    assert ctx["jwt"]["claims"]["cognito:groups"] == "[staff ops]"
    assert ctx["jwt"]["claims"]["exp"] == str(claims["exp"])
    assert ctx["jwt"]["scopes"] == ["a", "b"]
    assert claims_for_event({"sub": "x"})["jwt"]["scopes"] is None


def test_key_persists_across_restarts(tmp_path):
    a = JwtIssuer(tmp_path, ISS, AUD)
    token = a.issue("alice")
    b = JwtIssuer.from_state(tmp_path)
    assert b.kid == a.kid
    assert Authorizer("c", ISS, (AUD,)).authorize(_headers(token), b)["sub"] == "alice"
    assert b.jwks()["keys"][0]["kid"] == a.kid
