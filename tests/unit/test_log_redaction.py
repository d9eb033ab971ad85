"""cairn.logs redacts personal data and secrets from every structured log line (issue 12)."""

from __future__ import annotations

import io
import json
import logging

from aws_lambda_powertools import Logger

from cairn.logs import structured


def _logger(service: str) -> tuple[Logger, io.StringIO]:
    buffer = io.StringIO()  # one service name per test: Powertools keeps one logger per service
    logger = structured(Logger(service=service, logger_handler=logging.StreamHandler(buffer)), packages=())
    return logger, buffer


def test_personal_keys_and_email_addresses_never_reach_the_line():
    logger, buffer = _logger("redaction-extras")
    logger.info(
        "order for bob@example.com placed",
        extra={
            "email": "bob@example.com",
            "payment_token": "tok_visa_secret",
            "body": {"items": [1], "shipping_address": {"line1": "Secret Street 1"}, "note": "mail x.y@ex.org"},
            "order_id": "order-1",
        },
    )
    text = buffer.getvalue()
    line = json.loads(text)
    for secret in ("bob@example.com", "tok_visa_secret", "Secret Street", "x.y@ex.org"):
        assert secret not in text
    assert line["message"] == "order for [email] placed"
    assert line["email"] == line["payment_token"] == "[redacted]"
    assert line["body"] == {"items": [1], "shipping_address": "[redacted]", "note": "mail [email]"}
    assert line["order_id"] == "order-1"  # the rest is untouched


def test_library_loggers_are_redacted_too_and_percent_args():
    logger, buffer = _logger("redaction-library")
    library = logging.getLogger("cairn_redaction_probe")
    library.handlers = [logger.registered_handler]
    library.setLevel(logging.INFO)
    library.propagate = False
    library.info("sent to %s", "carol@example.com", extra={"token": "t-123"})
    line = json.loads(buffer.getvalue())
    assert line["message"] == "sent to [email]" and line["token"] == "[redacted]"
