"""Fixtures for the Gitea double's own tests."""

from __future__ import annotations

import pytest

from tests.support.doubles.gitea import Gitea, make_pki


@pytest.fixture(scope="session")
def gitea_pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("gitea-pki"))


@pytest.fixture
def gitea(tmp_path, gitea_pki):
    server = Gitea(tmp_path / "gitea", pki=gitea_pki).bootstrap_admin().start()
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
