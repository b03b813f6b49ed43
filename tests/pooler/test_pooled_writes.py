"""Claims and completes, bulk create and the manager's workflows through PgBouncer
(tests/integration/test_manager_workflows.py, test_bulk_create.py, test_worker_basics.py):
the same tests, with the manager's pools and the workers' requests on the pooler."""

from tests.integration.test_bulk_create import (  # noqa: F401
    test_a_bad_job_deep_in_a_big_batch_names_itself_and_writes_nothing,
    test_returned_jobs_equal_what_get_job_returns_after_projection,
)
from tests.integration.test_manager_workflows import *  # noqa: F403
from tests.integration.test_worker_basics import (  # noqa: F401
    test_a_worker_completes_jobs_with_the_returned_paths_and_its_own_timing,
    test_an_exception_fails_the_job_with_bounded_error_text,
    test_retry_requeues_and_is_not_claimable_before_its_delay,
)
