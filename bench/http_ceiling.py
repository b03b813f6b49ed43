"""The HTTP ceiling: the least an app does for vjm's `POST /api/v1/process` (issue 20, item 4).

FastAPI + asyncpg + PyJWT + pydantic in one uvicorn process: verify an HS256 bearer token (signature,
`exp`, `aud`, `role` = authenticated, `sub`), validate the same body with a pydantic model (the same
fields, strict types and bounds), INSERT one row into a plain table of its own (schema `http_ceiling`,
no RLS, no log, no projector, no metrics), answer 201 with the row's id. bench/http_hey.py measures vjm
against it. Run: CEILING_DATABASE_URL=... CEILING_JWT_SECRET=... python -m uvicorn bench.http_ceiling:app
"""

from __future__ import annotations

import contextlib
import os
from typing import Annotated, Literal

import asyncpg
import jwt
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, ConfigDict, Field

SCHEMA = """CREATE SCHEMA IF NOT EXISTS http_ceiling;
CREATE TABLE IF NOT EXISTS http_ceiling.jobs (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), user_id text NOT NULL,
    original_filename text NOT NULL, original_filesize bigint NOT NULL, clip_count integer NOT NULL,
    quality_preset text NOT NULL, enhancement_level text NOT NULL, platform_target text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now())"""
INSERT = ("INSERT INTO http_ceiling.jobs (user_id, original_filename, original_filesize, clip_count, quality_preset,"
          " enhancement_level, platform_target) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")


class CreateJob(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    original_filename: Annotated[str, Field(min_length=1, max_length=255)]
    original_filesize: Annotated[int, Field(ge=0, le=2**53)]
    clip_count: Annotated[int, Field(ge=1, le=50)]
    quality_preset: Literal["draft", "standard", "pro", "ultra"]
    enhancement_level: Literal["none", "basic", "advanced", "maximum"]
    platform_target: Literal["tiktok", "instagram", "youtube_shorts"]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI):
    size = int(os.environ.get("CEILING_POOL_SIZE", "10"))  # vjm's default (VJM_POOL_SIZE)
    async with asyncpg.create_pool(os.environ["CEILING_DATABASE_URL"], min_size=size, max_size=size) as pool:
        await pool.execute(SCHEMA)
        app.state.pool = pool
        yield


app = FastAPI(lifespan=lifespan)


async def subject(authorization: Annotated[str | None, Header()] = None) -> str:
    """The verified `sub` of the bearer token, or 401 (async: FastAPI runs a plain `def` in its thread pool)."""
    scheme, _, token = (authorization or "").partition(" ")
    try:
        if scheme.lower() != "bearer":
            raise jwt.InvalidTokenError("missing bearer token")
        claims = jwt.decode(token, os.environ["CEILING_JWT_SECRET"], algorithms=["HS256"], audience="authenticated",
                            options={"require": ["exp", "sub", "role"]}, leeway=5)
        if claims["role"] != "authenticated":
            raise jwt.InvalidTokenError("not an end user's token")
    except jwt.PyJWTError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from None
    return claims["sub"]


@app.post("/api/v1/process", status_code=201)
async def create(job: CreateJob, sub: Annotated[str, Depends(subject)]) -> dict[str, str]:
    row_id = await app.state.pool.fetchval(INSERT, sub, *job.model_dump().values())
    return {"id": str(row_id)}
