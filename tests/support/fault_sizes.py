"""Workload sizes of the fault tests: every size is `ci_size * VJM_FAULT_SCALE`.

VJM_FAULT_SCALE is 1 by default (the size CI runs in `make test`); 5 gives the issue's full
sizes (e.g. 10k transitions).
"""

from __future__ import annotations

import os


def fault_scale() -> float:
    """VJM_FAULT_SCALE: 1 (default) is the CI size; 5 is the issue's full size."""
    return float(os.environ.get("VJM_FAULT_SCALE", "1"))


def scaled(ci_size: int, minimum: int = 1) -> int:
    """A workload size: the CI size times VJM_FAULT_SCALE."""
    return max(minimum, int(ci_size * fault_scale()))
