"""The `vjm` command line: `vjm --help` lists the commands."""

from .main import main

__all__ = ["main"]
