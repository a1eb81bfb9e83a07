"""Shared pytest set-up.

The project's plugins are imported as Ansible imports them: through the collection namespace
(``from ansible_collections.island.installer.plugins.module_utils.island_x import ...``).
``collections/`` (a link back to the repository root, see ansible.cfg) is on pytest's
``pythonpath`` (pyproject.toml), so no test touches ``sys.path`` or a package's ``__path__``.

The throwaway PKI of the Gitea double is shared by every test that starts one (the double's own
tests and the integration tests): one per session, as making keys costs time.
"""

from __future__ import annotations

import pytest

from tests.support.doubles.gitea import make_pki as make_gitea_pki


@pytest.fixture(scope="session")
def gitea_pki(tmp_path_factory):
    """ca.crt, server.crt and server.key for the Gitea double (gitea.island.test, 127.0.0.1)."""
    return make_gitea_pki(tmp_path_factory.mktemp("gitea-pki"))
