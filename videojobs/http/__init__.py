"""vjm's HTTP API (FastAPI): `create_app(...)` builds it; `python -m videojobs.http.token` mints dev tokens."""

from .app import create_app
from .state import HttpOptions

__all__ = ["create_app", "HttpOptions"]
