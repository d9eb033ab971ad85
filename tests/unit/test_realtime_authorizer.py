"""The WebSocket ``$connect`` authorizer: only a pool-signed, unexpired token for our client passes.

The JWKS is served over real HTTP and fetched by PyJWT's ``PyJWKClient``, as from Cognito.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_TestPool1"
CLIENT = "client-abc"
KID = "test-key"
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:abc123/live/$connect"


@dataclass
class Jwks:
    url: str
    key: rsa.RSAPrivateKey
    hits: list[str]


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwk.update(kid=KID, alg="RS256", use="sig")
    body = json.dumps({"keys": [jwk]}).encode()
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - stdlib name
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Jwks(f"http://127.0.0.1:{server.server_address[1]}/us-east-1_TestPool1/.well-known/jwks.json", key, hits)
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def authorizer(jwks: Jwks, monkeypatch: pytest.MonkeyPatch) -> Any:
    from realtime import authorizer as module

    monkeypatch.setenv("JWKS_URL", jwks.url)
    monkeypatch.setenv("USER_POOL_ISSUER", ISSUER)
    monkeypatch.setenv("USER_POOL_CLIENT_IDS", CLIENT)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "realtime")
    module.verifier.cache_clear()
    yield module
    module.verifier.cache_clear()


class Context:
    function_name = "WsAuthorizer"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    aws_request_id = "req-1"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:WsAuthorizer"
    log_group_name = "/aws/lambda/WsAuthorizer"
    log_stream_name = "x"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def token(key: Any, *, alg: str = "RS256", kid: str = KID, **overrides: Any) -> str:
    now = int(time.time())
    claims = {"sub": "alice", "iss": ISSUER, "aud": CLIENT, "token_use": "id", "iat": now, "exp": now + 600,
              "cognito:groups": ["staff"]}
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})


def event(tok: str | None) -> dict[str, Any]:
    query = {} if tok is None else {"token": tok}
    return {"type": "REQUEST", "methodArn": METHOD_ARN, "queryStringParameters": query,
            "requestContext": {"routeKey": "$connect", "connectionId": "c-1"}}


def call(authorizer: Any, tok: str | None) -> dict[str, Any]:
    return authorizer.handler(event(tok), Context())


def refused(authorizer: Any, tok: str | None) -> None:
    with pytest.raises(Exception, match="^Unauthorized$"):
        call(authorizer, tok)


def test_a_valid_token_is_allowed_with_the_caller_in_the_context(authorizer: Any, jwks: Jwks) -> None:
    answer = call(authorizer, token(jwks.key))
    assert answer["principalId"] == "alice"
    assert answer["policyDocument"]["Statement"] == [
        {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": METHOD_ARN}
    ]
    assert answer["context"] == {"sub": "alice", "groups": "staff"}


def test_an_access_token_names_the_client_in_client_id(authorizer: Any, jwks: Jwks) -> None:
    tok = token(jwks.key, aud=None, client_id=CLIENT, token_use="access")
    assert call(authorizer, tok)["principalId"] == "alice"


def test_missing_or_empty_token_is_refused(authorizer: Any) -> None:
    refused(authorizer, None)
    refused(authorizer, "")
    refused(authorizer, "not-a-jwt")


def test_expired_token_is_refused(authorizer: Any, jwks: Jwks) -> None:
    now = int(time.time())
    refused(authorizer, token(jwks.key, iat=now - 7200, exp=now - 1))


def test_token_without_expiry_is_refused(authorizer: Any, jwks: Jwks) -> None:
    refused(authorizer, token(jwks.key, exp=None))


def test_wrong_issuer_is_refused(authorizer: Any, jwks: Jwks) -> None:
    refused(authorizer, token(jwks.key, iss="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_OtherPool"))


def test_wrong_audience_is_refused(authorizer: Any, jwks: Jwks) -> None:
    refused(authorizer, token(jwks.key, aud="another-client"))
    refused(authorizer, token(jwks.key, aud=None, client_id="another-client", token_use="access"))


def test_a_token_signed_by_another_key_is_refused(authorizer: Any) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused(authorizer, token(stranger))  # same kid, wrong key: the signature does not verify


def test_a_tampered_token_is_refused(authorizer: Any, jwks: Jwks) -> None:
    head, payload, signature = token(jwks.key).split(".")
    forged = jwt.utils.base64url_encode(json.dumps({
        "sub": "mallory", "iss": ISSUER, "aud": CLIENT, "exp": int(time.time()) + 600}).encode()).decode()
    refused(authorizer, f"{head}.{forged}.{signature}")


def test_alg_none_is_refused(authorizer: Any, jwks: Jwks) -> None:
    unsigned = jwt.encode({"sub": "mallory", "iss": ISSUER, "aud": CLIENT, "exp": int(time.time()) + 600},
                          None, algorithm="none", headers={"kid": KID})
    refused(authorizer, unsigned)


def test_hmac_with_the_public_key_as_secret_is_refused(authorizer: Any, jwks: Jwks) -> None:
    """The algorithm-confusion attack: only RS256 is accepted, whatever the header says."""
    refused(authorizer, token(b"x" * 32, alg="HS256"))


def test_unknown_kid_is_refused(authorizer: Any, jwks: Jwks) -> None:
    refused(authorizer, token(jwks.key, kid="rotated-away"))


def test_the_jwks_is_fetched_once_per_warm_lambda(authorizer: Any, jwks: Jwks) -> None:
    before = len(jwks.hits)
    for _ in range(5):
        call(authorizer, token(jwks.key))
    assert len(jwks.hits) - before == 1
    assert jwks.hits[-1].endswith("/.well-known/jwks.json")
