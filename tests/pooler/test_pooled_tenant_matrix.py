"""The tenant matrix (tests/integration/security/test_security_tenant_matrix.py) through PgBouncer:
every read and write of every user, on pooled connections that other users' transactions used."""

from tests.integration.security.test_security_tenant_matrix import *  # noqa: F403
