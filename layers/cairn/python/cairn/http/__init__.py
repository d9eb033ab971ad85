"""HTTP glue for API Gateway HTTP API Lambdas: problem+json, auth claims, ETag/If-Match,
idempotency, correlation ids, and running commands through ``CommandRuntime``.

Built on Powertools' ``APIGatewayHttpResolver`` (validation and OpenAPI generation).
"""

from cairn.http.auth import STAFF_GROUP, Principal, parse_groups, principal_of
from cairn.http.commands import CommandRequest, domain_problem, execute
from cairn.http.headers import (
    IdempotencyKey,
    IfMatch,
    correlation_id,
    etag,
    parse_if_match,
    request_fingerprint,
    scoped_idempotency_key,
)
from cairn.http.problems import (
    PROBLEM_BASE,
    PROBLEM_CONTENT_TYPE,
    ProblemError,
    forbidden,
    not_found,
    problem_type,
    unauthorized,
    validation_failed,
)
from cairn.http.service import MAX_BODY_BYTES, HttpService, transient_failure

__all__ = [
    "MAX_BODY_BYTES",
    "PROBLEM_BASE",
    "PROBLEM_CONTENT_TYPE",
    "STAFF_GROUP",
    "CommandRequest",
    "HttpService",
    "IdempotencyKey",
    "IfMatch",
    "Principal",
    "ProblemError",
    "correlation_id",
    "domain_problem",
    "etag",
    "execute",
    "forbidden",
    "not_found",
    "parse_groups",
    "parse_if_match",
    "principal_of",
    "problem_type",
    "request_fingerprint",
    "scoped_idempotency_key",
    "transient_failure",
    "unauthorized",
    "validation_failed",
]
