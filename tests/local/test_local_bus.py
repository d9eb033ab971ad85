"""The local EventBridge's schedule override (``CAIRN_LOCAL_SCHEDULE_SECONDS``)."""

from __future__ import annotations

import pytest

from local.bus import schedule_override

TIMEOUTS = "Cairn-PaymentTimeoutsScheduleC063FC46"
ARCHIVE = "Cairn-ArchiveSchedule1051A8CB"


def test_a_bare_number_speeds_up_every_schedule():
    assert schedule_override("2", TIMEOUTS) == 2
    assert schedule_override("2", ARCHIVE) == 2


def test_a_named_override_speeds_up_only_the_rules_it_names():
    """The e2e runtime sweeps payment timeouts every 2 s; firing the archiver, the digest and the
    snapshot sweep every 2 s as well overloaded the one runtime the whole e2e suite shares."""
    assert schedule_override("2:PaymentTimeouts", TIMEOUTS) == 2
    assert schedule_override("2:PaymentTimeouts", ARCHIVE) is None
    assert schedule_override("5:Archive, PaymentTimeouts", ARCHIVE) == 5


@pytest.mark.parametrize("setting", ["", "  ", "fast", "-3", "2.5", "²", "٣:PaymentTimeouts", ":PaymentTimeouts", "x:PaymentTimeouts"])
def test_anything_else_is_no_override(setting):
    assert schedule_override(setting, TIMEOUTS) is None


def test_zero_is_clamped_to_one_second():
    assert schedule_override("0", TIMEOUTS) == 1
