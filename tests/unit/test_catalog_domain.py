"""The product decider and the order service's pricing rules (pure)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from catalog import domain as catalog
from orders import domain as orders
from orders.pricing import StaticPriceList


def fold(events, state=None):
    state = state or catalog.initial_state()
    for event in events:
        state = catalog.evolve(state, event)
    return state


def test_listing_then_price_change_is_an_event_with_the_previous_price():
    first = catalog.decide(catalog.SetProduct(sku="BOOK-1", name="Book", unit_price="9.99", currency="USD"),
                           catalog.initial_state())
    assert [type(e) for e in first] == [catalog.ProductListed]
    state = fold(first)
    again = catalog.decide(catalog.SetProduct(sku="BOOK-1", name="Book", unit_price="9.99", currency="USD"), state)
    assert again == []  # the same PUT twice: no event
    changed = catalog.decide(catalog.SetProduct(sku="BOOK-1", name="Book 2e", unit_price="12.00", currency="USD"), state)
    assert [type(e) for e in changed] == [catalog.ProductRenamed, catalog.ProductPriceChanged]
    assert changed[1].previous_price == Decimal("9.99")
    assert fold(changed, state).unit_price == Decimal("12.00")
    assert catalog.state_from_dict(catalog.state_to_dict(fold(changed, state))) == fold(changed, state)


@pytest.mark.parametrize("price", ["0.00", "-1.00", "1000000.01", "1.001"])
def test_prices_out_of_range_are_refused(price):
    with pytest.raises(ValueError):
        catalog.SetProduct(sku="X", name="x", unit_price=price, currency="USD")


PRICES = StaticPriceList({"BOOK-1": ("9.99", "USD"), "MUG-1": ("12.00", "EUR")})


def price(lines, currency="USD"):
    requested = [orders.RequestedLine(**line) for line in lines]
    return orders.price_lines(requested, currency, PRICES.prices(line.sku for line in requested))


def test_omitted_price_takes_the_catalogs_and_a_matching_one_is_accepted():
    priced = price([{"sku": "BOOK-1", "quantity": 2}, {"sku": "BOOK-1", "quantity": 1, "unit_price": "9.99"}])
    assert [line.unit_price for line in priced] == [Decimal("9.99")] * 2


@pytest.mark.parametrize(
    ("lines", "currency", "error"),
    [
        ([{"sku": "NOPE", "quantity": 1}], "USD", orders.UnknownProductError),
        ([{"sku": "BOOK-1", "quantity": 1, "unit_price": "0.01"}], "USD", orders.PriceMismatchError),
        ([{"sku": "MUG-1", "quantity": 1}], "USD", orders.CurrencyMismatchError),
    ],
)
def test_pricing_refusals(lines, currency, error):
    with pytest.raises(error) as caught:
        price(lines, currency)
    assert caught.value.status == 409
