"""Pool sizes from the environment (validated once) and the application_name each session gets; no database."""

from __future__ import annotations

import pydantic
import pytest

from store.application_name import MAX_LENGTH, application_name, clean, current, named_kwargs, worker_name
from videojobs import Settings

POOL_VARIABLES = ("VJM_POOL_SIZE", "VJM_USER_POOL_SIZE", "VJM_POOL_MIN_SIZE")


@pytest.fixture(autouse=True)
def _no_pool_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in POOL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_pool_sizes_default_to_ten_connections_at_most_and_one_kept() -> None:
    settings = Settings.from_env()
    assert (settings.pool_size, settings.user_pool_size, settings.pool_min_size) == (10, None, 1)


def test_pool_sizes_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VJM_POOL_SIZE", "20")
    monkeypatch.setenv("VJM_USER_POOL_SIZE", "4")
    monkeypatch.setenv("VJM_POOL_MIN_SIZE", "0")
    settings = Settings.from_env()
    assert (settings.pool_size, settings.user_pool_size, settings.pool_min_size) == (20, 4, 0)


@pytest.mark.parametrize("variables, field", [
    ({"VJM_POOL_SIZE": "0"}, "pool_size"),
    ({"VJM_POOL_SIZE": "201"}, "pool_size"),
    ({"VJM_USER_POOL_SIZE": "0"}, "user_pool_size"),
    ({"VJM_USER_POOL_SIZE": "many"}, "user_pool_size"),
    ({"VJM_POOL_MIN_SIZE": "-1"}, "pool_min_size"),
    ({"VJM_POOL_MIN_SIZE": "11"}, "VJM_POOL_MIN_SIZE must not exceed"),
    ({"VJM_POOL_SIZE": "20", "VJM_USER_POOL_SIZE": "2", "VJM_POOL_MIN_SIZE": "3"}, "VJM_POOL_MIN_SIZE must not exceed"),
])
def test_bad_pool_sizes_are_refused(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str], field: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(pydantic.ValidationError, match=field):
        Settings.from_env()


def test_a_name_is_printable_ascii_of_at_most_63_characters() -> None:
    assert clean("vjm:worker:a") == "vjm:worker:a"
    assert clean("vjm:worker:ü\n") == "vjm:worker:??"
    long = "h" * 100 + ":1234:abcdef"
    kept = clean(long)
    assert len(kept) == MAX_LENGTH and kept.startswith("h" * 30 + "..") and kept.endswith(":1234:abcdef")
    assert worker_name("w1") == "vjm:worker:w1"


def test_the_name_is_set_for_a_block_and_the_users_own_wins() -> None:
    url = "postgresql://u@h/db"
    assert current() == "vjm"
    with application_name("vjm:api"):
        assert named_kwargs(url, {"timeout": 5}) == {"timeout": 5, "server_settings": {"application_name": "vjm:api"}}
        assert named_kwargs(url, {"server_settings": {"jit": "off"}})["server_settings"] == {
            "jit": "off", "application_name": "vjm:api"}
        assert named_kwargs(url, {"server_settings": {"application_name": "mine"}}) == {
            "server_settings": {"application_name": "mine"}}
        assert named_kwargs(url + "?sslmode=disable&application_name=mine", {}) == {}
    assert current() == "vjm"
