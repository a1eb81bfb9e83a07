"""Fixtures for the Gitea double's own tests (``gitea_pki`` comes from tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.doubles.gitea import running_gitea


@pytest.fixture
def gitea(tmp_path, gitea_pki):
    server = running_gitea(tmp_path / "gitea", gitea_pki)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres(gitea_pki):
    """A real PostgreSQL server (Debian's postgresql) with TLS, for DB_TYPE = postgres."""
    from tests.support.doubles.gitea import Postgres, postgres_missing

    missing = postgres_missing()
    if missing:
        pytest.skip(missing)
    server = Postgres(gitea_pki)
    yield server
    server.stop()
