"""The HTTP API through PgBouncer: tests/http's suites for jobs, lists and tenants, idempotent creates,
teams, the worker endpoints and the event stream, with the app's manager on the pooler."""

from tests.http.test_event_stream import *  # noqa: F403
from tests.http.test_idempotency import (  # noqa: F401
    # Not test_eight_concurrent_posts_with_one_key_make_one_job_that_all_get: it waits for 8 server
    # sessions to queue on one key, and the pooler has 5 (the others queue in the pooler, not on the key).
    test_a_malformed_header_is_422_and_creates_nothing,
    test_a_replay_answers_as_the_first_request_did_and_creates_nothing,
    test_a_request_while_the_first_is_in_progress_gets_409_then_the_first_ones_answer,
    test_keys_are_per_user,
    test_the_header_and_the_body_must_name_one_key,
    test_the_header_is_a_structured_string_or_the_bare_key,
    test_the_same_key_with_another_body_is_422_and_creates_nothing,
)
from tests.http.test_jobs import *  # noqa: F403
from tests.http.test_lists_and_tenants import *  # noqa: F403
from tests.http.test_teams import *  # noqa: F403
from tests.http.test_worker_endpoints import *  # noqa: F403
