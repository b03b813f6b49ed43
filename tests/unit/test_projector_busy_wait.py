"""The projector's poll while appends are in flight (listeners.projector_config.next_busy_wait).

A batch's cost is mostly fixed (its round trips and one set-based apply), so under load the
projector waits for about `busy_batch_target` events per batch, within its bounds.
"""

from __future__ import annotations

import pytest

from listeners import ProjectorConfig
from listeners.projector_config import next_busy_wait

CONFIG = ProjectorConfig(database_url="postgresql://x", busy_poll_interval=0.005, busy_poll_max=0.05,
                         busy_batch_target=32)


def test_a_small_batch_lengthens_the_wait_in_proportion() -> None:
    assert next_busy_wait(CONFIG, 0.005, 8) == pytest.approx(0.02)  # 8 events in 5 ms: 32 take 20 ms


def test_a_batch_past_the_target_shortens_the_wait() -> None:
    assert next_busy_wait(CONFIG, 0.04, 64) == pytest.approx(0.02)


def test_the_wait_stays_between_its_bounds() -> None:
    assert next_busy_wait(CONFIG, 0.005, 1) == pytest.approx(0.05)  # 160 ms would be asked: the ceiling
    assert next_busy_wait(CONFIG, 0.005, 10_000) == pytest.approx(0.005)
    assert next_busy_wait(CONFIG.model_copy(update={"poll_interval": 0.03}), 0.005, 1) == pytest.approx(0.03)


def test_nothing_new_backs_off_twice_as_long() -> None:
    assert next_busy_wait(CONFIG, 0.01, 0) == pytest.approx(0.02)
    assert next_busy_wait(CONFIG, 0.04, 0) == pytest.approx(0.05)


def test_at_a_steady_rate_the_batches_converge_on_the_target() -> None:
    rate, apply_seconds, wait = 2_000.0, 0.004, CONFIG.busy_poll_interval  # events/s; each apply takes 4 ms
    for _ in range(20):
        events = round(rate * (wait + apply_seconds))  # what arrived while it waited and applied
        wait = next_busy_wait(CONFIG, wait, events)
    assert round(rate * (wait + apply_seconds)) == pytest.approx(32, abs=2)


def test_a_target_of_one_polls_as_often_as_it_may() -> None:
    eager = CONFIG.model_copy(update={"busy_batch_target": 1})
    assert next_busy_wait(eager, 0.005, 3) == pytest.approx(0.005)
    with pytest.raises(ValueError):
        ProjectorConfig(database_url="postgresql://x", busy_batch_target=0)
