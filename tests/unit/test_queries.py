"""Named queries: parameters by name, checked before anything is sent; the statement asyncpg gets."""

from __future__ import annotations

import re

import pytest

from store.queries import QueryArgumentError, _all_queries, compile_query, fetch_all, fetch_one, named_query


def test_every_query_names_its_parameters_and_numbers_them_in_order() -> None:
    for query in _all_queries().values():
        numbers = [int(n) for n in re.findall(r"\$(\d+)", query.sql)]
        assert sorted(set(numbers)) == list(range(1, len(query.params) + 1)), query.name
        assert not re.search(r"(?<![:\w]):[A-Za-z_]", query.sql.replace("'", " ' ")), query.name


def test_a_name_used_twice_is_one_parameter_and_casts_strings_and_comments_are_left_alone() -> None:
    query = compile_query("q", "SELECT ':not_a_param', \"a:b\" FROM t -- :nor_this\n"
                               "WHERE (:user_id::text IS NULL OR user_id = :user_id) AND x = ANY(:ids::uuid[]) "
                               "AND y = $tag$:inside$tag$ /* :comment */")
    assert query.params == ("user_id", "ids")
    assert query.sql == ("SELECT ':not_a_param', \"a:b\" FROM t -- :nor_this\n"
                         "WHERE ($1::text IS NULL OR user_id = $1) AND x = ANY($2::uuid[]) "
                         "AND y = $tag$:inside$tag$ /* :comment */")


def test_a_positional_parameter_is_refused_when_the_queries_load() -> None:
    with pytest.raises(ValueError, match=r"positional \$1"):
        compile_query("old", "SELECT * FROM t WHERE id = $1")


def test_arguments_bind_by_name_in_the_statements_order() -> None:
    query = named_query("projection_batch_read")
    given = {"after_xact_id": 7, "after_position": 9, "limit": 3}
    assert dict(zip(query.params, query.args(given), strict=True)) == given


async def test_a_missing_or_unknown_parameter_is_refused_before_the_database_is_reached() -> None:
    nowhere = None  # no executor at all: the error must come first
    with pytest.raises(QueryArgumentError, match="job_get.*missing: job_id"):
        await fetch_one(nowhere, "job_get")  # type: ignore[arg-type]
    with pytest.raises(QueryArgumentError, match="unknown: job_ids"):
        await fetch_all(nowhere, "job_get", job_id=None, job_ids=[])  # type: ignore[arg-type]
    with pytest.raises(QueryArgumentError, match="no named query 'job_gett'"):
        await fetch_all(nowhere, "job_gett", job_id=None)  # type: ignore[arg-type]
