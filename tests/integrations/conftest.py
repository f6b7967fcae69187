from __future__ import annotations

from collections.abc import Iterator

import pytest

from integrations.fakes import SPECS, FakeSendGrid, FakeTwilio


@pytest.fixture
def fake_sendgrid() -> Iterator[FakeSendGrid]:
    if not SPECS.is_dir():
        pytest.skip(f"provider specs not found at {SPECS}")
    fake = FakeSendGrid().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    if not SPECS.is_dir():
        pytest.skip(f"provider specs not found at {SPECS}")
    fake = FakeTwilio().start()
    yield fake
    fake.stop()
