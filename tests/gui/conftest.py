"""Fixtures shared by the GUI tests."""
from __future__ import annotations

import pytest

from tests.gui.zmq_helpers import FakeService


@pytest.fixture
def service():
    """A real ZMQ publisher on 127.0.0.1 that tests feed with messages; closed afterwards."""
    fake = FakeService()
    yield fake
    fake.close()
