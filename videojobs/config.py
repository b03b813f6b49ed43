"""Configuration from the environment, validated once (pydantic)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from store import default_data_dir

# What `vjm up --workers N` sets for each worker (videojobs/cli/up_workers.py): prometheus_client's directory for its
# multi-process files, and the flag by which /metrics merges every worker's files (videojobs/http/metrics.py). A
# directory a user sets for a single process is not merged: nothing there drops a dead process's gauges.
METRICS_DIR_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
MERGE_METRICS_VARIABLE = "VJM_MERGE_WORKER_METRICS"


class Settings(BaseModel):
    """Everything vjm reads from the environment. Absent values have working defaults."""

    model_config = ConfigDict(frozen=True)

    database_url: str | None = Field(None, description="VJM_DATABASE_URL; absent: embedded Postgres")
    direct_database_url: str | None = Field(None, description="VJM_DIRECT_DATABASE_URL: where the listeners, the "
                                                              "change feed and migrations connect (LISTEN, "
                                                              "session locks); absent: VJM_DATABASE_URL")
    database_pooler: Literal["transaction"] | None = Field(None, description="VJM_DATABASE_POOLER=transaction when "
                                                                             "VJM_DATABASE_URL is a transaction "
                                                                             "pooler (PgBouncer, Supavisor 6543)")
    read_database_url: str | None = Field(None, description="VJM_READ_DATABASE_URL: a streaming standby of the "
                                                            "database; lists, stats, history and the change feed "
                                                            "read there (absent: everything on the primary)")
    data_dir: Path = Field(default_factory=default_data_dir, description="VJM_DATA_DIR for the embedded server")
    jwt_secret: str | None = Field(None, description="VJM_JWT_SECRET: the identity key (HS256) of the HTTP API and the database")
    jwt_audience: str | None = Field("authenticated", description="VJM_JWT_AUDIENCE")
    stuck_timeout_seconds: float = Field(15 * 60, gt=0, description="VJM_STUCK_TIMEOUT_SECONDS")
    stuck_interval_seconds: float = Field(60, gt=0, le=86400, description="VJM_STUCK_INTERVAL_SECONDS")
    pool_size: int = Field(10, ge=1, le=200, description="VJM_POOL_SIZE: the most connections of the service pool "
                                                         "(and of the end users' pool unless VJM_USER_POOL_SIZE)")
    user_pool_size: int | None = Field(None, ge=1, le=200, description="VJM_USER_POOL_SIZE: the most connections of "
                                                                       "the end users' pool (default VJM_POOL_SIZE)")
    pool_min_size: int = Field(1, ge=0, le=200, description="VJM_POOL_MIN_SIZE: connections each pool opens at "
                                                            "once and keeps")
    log_level: str = Field("INFO", description="VJM_LOG_LEVEL")
    write_combining: bool = Field(True, description="VJM_WRITE_COMBINING: combine the trusted manager's concurrent "
                                                    "appends, and each end user's concurrent creates, into one "
                                                    "statement and commit per round (0 to turn off)")
    service_name: str = Field("vjm", min_length=1, max_length=200,
                              description="VJM_SERVICE_NAME: the actor the audit trail records for what the "
                                          "trusted manager does without a named actor")

    @model_validator(mode="after")
    def _pool_sizes_in_order(self) -> Settings:
        if self.pool_min_size > min(self.pool_size, self.user_pool_size or self.pool_size):
            raise ValueError("VJM_POOL_MIN_SIZE must not exceed VJM_POOL_SIZE or VJM_USER_POOL_SIZE")
        if (self.database_pooler or self.direct_database_url) and not self.database_url:
            raise ValueError("VJM_DATABASE_POOLER and VJM_DIRECT_DATABASE_URL need VJM_DATABASE_URL "
                             "(the embedded server has no pooler)")
        return self

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Read VJM_* variables; keyword arguments win over the environment."""
        env: dict[str, Any] = {
            "database_url": os.environ.get("VJM_DATABASE_URL") or None,
            "direct_database_url": os.environ.get("VJM_DIRECT_DATABASE_URL") or None,
            "database_pooler": pooler_of(os.environ.get("VJM_DATABASE_POOLER", "")),
            "read_database_url": os.environ.get("VJM_READ_DATABASE_URL") or None,
            "jwt_secret": os.environ.get("VJM_JWT_SECRET") or None,
            "jwt_audience": os.environ.get("VJM_JWT_AUDIENCE", "authenticated") or None,
            "log_level": os.environ.get("VJM_LOG_LEVEL", "INFO"),
        }
        if os.environ.get("VJM_DATA_DIR"):
            env["data_dir"] = Path(os.environ["VJM_DATA_DIR"]).expanduser()
        if os.environ.get("VJM_STUCK_TIMEOUT_SECONDS"):
            env["stuck_timeout_seconds"] = os.environ["VJM_STUCK_TIMEOUT_SECONDS"]
        if os.environ.get("VJM_STUCK_INTERVAL_SECONDS"):
            env["stuck_interval_seconds"] = os.environ["VJM_STUCK_INTERVAL_SECONDS"]
        if os.environ.get("VJM_SERVICE_NAME"):
            env["service_name"] = os.environ["VJM_SERVICE_NAME"]
        if os.environ.get("VJM_WRITE_COMBINING"):
            env["write_combining"] = os.environ["VJM_WRITE_COMBINING"] not in ("0", "false", "no", "off")
        for field in ("pool_size", "user_pool_size", "pool_min_size"):
            if os.environ.get(f"VJM_{field.upper()}"):
                env[field] = os.environ[f"VJM_{field.upper()}"]
        env.update({k: v for k, v in overrides.items() if v is not None})
        return cls.model_validate(env)


def pooler_of(text: str) -> str | None:
    """VJM_DATABASE_POOLER: 'transaction', or none ('', 'none', 'session': nothing to work around)."""
    value = text.strip().lower()
    return None if value in ("", "none", "session", "direct") else value
