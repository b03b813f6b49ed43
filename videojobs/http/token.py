"""`python -m videojobs.http.token --sub user-123 --role authenticated`: print a dev token.

Signed HS256 with VJM_JWT_SECRET (or --secret), audience VJM_JWT_AUDIENCE (default
"authenticated"), valid for --ttl seconds. For development and tests only.
"""

from __future__ import annotations

import argparse
import os
import sys

from .auth import SERVICE_ROLE, USER_ROLE, mint_token


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, print the token; exit status 2 without a secret."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sub", help="the user id (required for --role authenticated)")
    parser.add_argument("--role", default=USER_ROLE, choices=[USER_ROLE, SERVICE_ROLE])
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires (default 3600)")
    parser.add_argument("--secret", default=os.environ.get("VJM_JWT_SECRET"), help="default: VJM_JWT_SECRET")
    parser.add_argument("--audience", default=os.environ.get("VJM_JWT_AUDIENCE", "authenticated"))
    args = parser.parse_args(argv)
    if not args.secret:
        print("set VJM_JWT_SECRET (or pass --secret)", file=sys.stderr)
        return 2
    if args.role == USER_ROLE and not args.sub:
        print("--sub is required for role authenticated", file=sys.stderr)
        return 2
    print(mint_token(args.secret, sub=args.sub, role=args.role, audience=args.audience or None,
                     ttl_seconds=args.ttl))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
