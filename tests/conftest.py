"""Shared pytest set-up.

The project's plugins are imported as Ansible imports them: through the collection namespace
(``from ansible_collections.island.installer.plugins.module_utils.island_x import ...``).
``collections/`` (a link back to the repository root, see ansible.cfg) is on pytest's
``pythonpath`` (pyproject.toml), so no test touches ``sys.path`` or a package's ``__path__``.
"""
