"""How `make test` hands work to its two xdist workers (tests/conftest.py)."""

from __future__ import annotations

from tests.conftest import schedule_order, suite_of


def test_a_shared_suite_is_one_unit_and_other_modules_are_their_own():
    assert suite_of("tests/e2e/test_e2e_orders.py::test_order_lifecycle") == "e2e"
    assert suite_of("tests/infrastructure/test_cdk_nag.py::test_x[a]") == "infrastructure"
    assert suite_of("tests/unit/test_money.py::TestParse::test_y") == "tests/unit/test_money.py"


def test_the_longest_units_go_first_then_the_biggest():
    """xdist's own order (most tests first) started the five-minute one-test shuffle module last."""
    units = {
        "tests/unit/test_many.py": ["t"] * 300,
        "tests/unit/test_few.py": ["t"] * 3,
        "tests/reliability/test_shuffle_10k.py": ["t"],
        "e2e": ["t"] * 100,
    }
    assert schedule_order(units) == [
        "e2e", "tests/reliability/test_shuffle_10k.py", "tests/unit/test_many.py", "tests/unit/test_few.py"]
