"""Catalog over its real handlers on moto: PUT/GET /catalog/{sku}, the projection, and POST /orders
priced from the catalog's read model (never from the client)."""

from __future__ import annotations

import pytest

from tests.functional.conftest import Api, Projector


@pytest.fixture
def catalog_api(cloud) -> Api:
    from catalog.api import handler

    return Api(handler)


@pytest.fixture
def catalog_projector(cloud) -> Projector:
    from catalog.projections import handler

    return Projector(handler, "product-", kinesis=True)  # deployed, it reads the Kinesis fan-out


@pytest.fixture
def pricing_orders(cloud) -> Api:
    from orders.api import handler

    return Api(handler, seed_catalog=False)


STAFF = {"user": "owner", "groups": ["staff"]}


def put(api: Api, sku: str, price: str, currency: str = "USD", name: str = "A book"):
    return api("PUT", f"/catalog/{sku}", body={"name": name, "unit_price": price, "currency": currency}, **STAFF)


def test_put_get_and_price_history(catalog_api: Api, catalog_projector: Projector):
    reply = put(catalog_api, "BOOK-1", "9.99")
    assert reply.status == 200 and reply.json == {
        "sku": "BOOK-1", "name": "A book", "unit_price": "9.99", "currency": "USD", "version": 1}
    assert put(catalog_api, "BOOK-1", "9.99").json["version"] == 1  # same body: nothing changes
    assert put(catalog_api, "BOOK-1", "11.00").json["version"] == 2
    catalog_projector.run()
    got = catalog_api.get("/catalog/BOOK-1", user="bob")
    assert got.status == 200 and got.json["unit_price"] == "11.00" and got.headers["x-cairn-source"] == "read-model"
    from catalog.app import runtime

    types = [e.type for e in runtime().store.read("product-BOOK-1")]
    assert types == ["ProductListed", "ProductPriceChanged"]  # the price in force is auditable


def test_put_is_staff_only_and_validated(catalog_api: Api):
    reply = catalog_api("PUT", "/catalog/BOOK-1", body={"name": "x", "unit_price": "1.00", "currency": "USD"})
    assert reply.is_problem(403)
    for bad in ({"name": "x", "unit_price": "0.00", "currency": "USD"},
                {"name": "x", "unit_price": "1000000.01", "currency": "USD"},
                {"name": "x", "unit_price": 1.5, "currency": "USD"},
                {"name": "", "unit_price": "1.00", "currency": "usd"}):
        assert put_raw(catalog_api, "BOOK-1", bad).is_problem(422, "validation-failed")


def put_raw(api: Api, sku: str, body):
    return api("PUT", f"/catalog/{sku}", body=body, **STAFF)


def test_unknown_sku_is_404(catalog_api: Api):
    assert catalog_api.get("/catalog/NOPE-1").is_problem(404)
    assert catalog_api.get("/catalog/..%2F").is_problem(404)


def test_orders_are_priced_from_the_catalog(
    cloud: dict, catalog_api: Api, catalog_projector: Projector, pricing_orders: Api
):
    cloud_env = cloud
    put(catalog_api, "BOOK-1", "9.99")
    put(catalog_api, "MUG-1", "12.00", "EUR")
    catalog_projector.run()
    created = pricing_orders.post("/orders", {"items": [{"sku": "BOOK-1", "quantity": 2}], "currency": "USD"})
    assert created.status == 201 and created.json["total"] == "19.98"
    confirmed = pricing_orders.post(
        "/orders", {"items": [{"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}], "currency": "USD"})
    assert confirmed.status == 201 and confirmed.json["total"] == "9.99"
    cases = [
        ({"items": [{"sku": "NOPE", "quantity": 1}], "currency": "USD"}, "unknown-product"),
        ({"items": [{"sku": "BOOK-1", "quantity": 1000, "unit_price": "0.01"}], "currency": "USD"}, "price-mismatch"),
        ({"items": [{"sku": "MUG-1", "quantity": 1}], "currency": "USD"}, "currency-mismatch"),
    ]
    for body, problem in cases:
        assert pricing_orders.post("/orders", body).is_problem(409, problem)
    # a price change reaches new orders once projected
    put(catalog_api, "BOOK-1", "10.50")
    catalog_projector.run()
    assert pricing_orders.post("/orders", {"items": [{"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}],
                                           "currency": "USD"}).is_problem(409, "price-mismatch")
    assert pricing_orders.post("/orders", {"items": [{"sku": "BOOK-1", "quantity": 2}],
                                           "currency": "USD"}).json["total"] == "21.00"
    # refusals appended nothing: exactly the three accepted orders exist
    from cairn.aws import client

    items = client("dynamodb").scan(TableName=cloud_env["EVENTS_TABLE"])["Items"]
    assert sorted(i["stream_id"]["S"].split("-")[0] for i in items) == ["order"] * 3 + ["product"] * 3


def test_quantities_out_of_range_are_422(pricing_orders: Api):
    for quantity in (0, 1001, -1):
        body = {"items": [{"sku": "BOOK-1", "quantity": quantity}], "currency": "USD"}
        assert pricing_orders.post("/orders", body).is_problem(422, "validation-failed")


def test_the_projection_reads_the_kinesis_fan_out(cloud, catalog_api: Api, catalog_projector: Projector):
    """The template maps CatalogProjections on the Kinesis fan-out (issue 18): its handler takes
    Kinesis records (base64 DynamoDB changes, Kinesis sequence numbers), not only stream records."""
    from cairn.projections.kinesis import kinesis_record
    from catalog.projections import handler
    from tests.functional.conftest import LambdaContext

    put(catalog_api, "BOOK-K", "3.50")
    records = [kinesis_record(r, sequence_number=f"4959{i:030d}", table_name="events",
                              stream_arn="arn:aws:kinesis:us-east-1:123456789012:stream/cairn-events")
               for i, r in enumerate(catalog_projector.records(), 1)]
    assert records
    assert handler({"Records": records}, LambdaContext()) == {"batchItemFailures": []}
    got = catalog_api.get("/catalog/BOOK-K", user="bob")
    assert got.status == 200 and got.json["unit_price"] == "3.50" and got.headers["x-cairn-source"] == "read-model"
