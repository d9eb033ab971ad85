"""How `make test` hands work to its two xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import suite_of


def test_a_shared_suite_is_one_unit_and_other_modules_are_their_own():
    assert suite_of("tests/e2e/test_e2e_orders.py::test_order_lifecycle") == "e2e"
    assert suite_of("tests/infrastructure/test_cdk_nag.py::test_x[a]") == "infrastructure"
    assert suite_of("tests/unit/test_money.py::TestParse::test_y") == "tests/unit/test_money.py"
