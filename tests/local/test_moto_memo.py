"""The memoized lookups of local/moto_memo.py answer exactly as moto's own functions do."""

from __future__ import annotations

import pytest
from moto.core.responses import BaseResponse
from moto.dynamodb.responses import DynamoHandler
from moto.events.responses import EventsHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sqs.responses import SQSResponse

from local import moto_memo

HOSTS = [None, "moto_api", "instance_metadata", "no-such-service.eu-west-1.amazonaws.com"] + [
    f"{service}.{region}.amazonaws.com"
    for service in ("dynamodb", "streams.dynamodb", "sqs", "events", "s3", "kms", "sts", "logs", "sns",
                    "lambda", "cognito-idp", "execute-api", "monitoring", "ses")
    for region in ("us-east-1", "eu-west-1")
]


@pytest.fixture(scope="module")
def original():
    moto_memo.install()
    return moto_memo.originals()


def test_routing_answers_as_moto_for_every_host_twice(original):
    app = DomainDispatcherApplication(create_backend_app)
    for host in HOSTS * 2:  # the second round is served from the cache
        assert app.get_backend_for_host(host) == original["get_backend_for_host"](app, host), host
    assert len(app.__dict__["_cairn_backend_for_host"]) == len(HOSTS)  # answered from the cache


def test_the_module_list_is_moto_s(original):
    from moto import backends

    assert list(backends.list_of_moto_modules()) == list(original["list_of_moto_modules"]())
    assert "dynamodb" in backends.list_of_moto_modules()


@pytest.mark.parametrize("cls", [DynamoHandler, SQSResponse, EventsHandler, BaseResponse])
def test_method_names_are_moto_s(original, cls):
    from moto.core import responses

    assert responses.method_names_from_class(cls) == original["method_names_from_class"](cls)
    assert responses.method_names_from_class(cls) is responses.method_names_from_class(cls)


def test_a_cached_jsonpath_finds_what_a_fresh_one_finds(original):
    import jsonpath_ng.ext

    event = {"detail": {"order_id": "o-1", "lines": [{"sku": "A"}, {"sku": "B"}]}, "detail-type": "OrderPaid"}
    for path in ("$.detail.order_id", "$.detail.lines[*].sku", "$.detail-type", "$.missing"):
        for _ in range(2):
            cached = [m.value for m in jsonpath_ng.ext.parse(path).find(event)]
            fresh = [m.value for m in original["jsonpath_parse"](path).find(event)]
            assert cached == fresh, path
    assert jsonpath_ng.ext.parse("$.detail.order_id") is jsonpath_ng.ext.parse("$.detail.order_id")
