"""The manager's facade: each specification name is its service's method, and a manager builds a service only
when it is first used (a manager per HTTP request pays for what the request uses)."""

from __future__ import annotations

import inspect

from videojobs.manager import VideoJobManager, _ServiceMethod
from videojobs.manager.session import Caller

SERVICES = ("jobs", "bulk", "processors", "stats", "teams", "audit", "maintenance", "subscriptions", "workers",
            "queue")


def _manager() -> VideoJobManager:
    return VideoJobManager(runtime=None, caller=Caller(user_id="alice"))  # type: ignore[arg-type]  # no I/O here


def test_each_specification_name_is_its_services_method() -> None:
    names = {name: d for name, d in vars(VideoJobManager).items() if isinstance(d, _ServiceMethod)}
    assert {"create_job", "get_job_by_id", "claim_jobs", "get_job_stats", "get_job_history"} <= set(names)
    manager = _manager()
    for name, descriptor in names.items():
        bound = getattr(manager, name)
        assert bound.__self__ is getattr(manager, descriptor.service), name
        assert bound.__func__ is descriptor.method is getattr(VideoJobManager, name), name
        assert inspect.signature(getattr(VideoJobManager, name)) == inspect.signature(descriptor.method)


def test_services_are_built_on_first_use_and_kept() -> None:
    manager = _manager()
    assert not set(SERVICES) & set(vars(manager))
    jobs = manager.jobs
    assert manager.jobs is jobs and manager.create_job.__self__ is jobs
    assert set(vars(manager)) & set(SERVICES) == {"jobs"}
    assert all(getattr(manager, s)._session is manager._session for s in SERVICES)
