"""The stuck detector's configuration, checked without a database (the detector at work is in tests/integration)."""

from __future__ import annotations

import pytest

from listeners import StuckDetectorConfig


def test_config_is_validated() -> None:
    with pytest.raises(ValueError):
        StuckDetectorConfig(timeout=-1)
    assert StuckDetectorConfig().timeout == 900
