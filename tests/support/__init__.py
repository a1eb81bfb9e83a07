"""Support code for the island installer's tests and benchmarks, written once.

- ``pki``: one throwaway CA (cryptography) that issues server certificates for test servers.
- ``island_pki``: the island's own PKI in a temporary directory, and independent TLS checkers.
- ``net``: free loopback ports and waiting for a port or URL.
- ``modules``: run an Ansible module's ``main()`` in-process.
- ``playbook``: run ansible-playbook against this checkout.
- ``doubles``: the one launcher for every test double (tests/doubles/<name>/<name>).
- ``oci``: a real registry (Debian's docker-registry) and real OCI images.
- ``bundle``: signed island bundles made in a temporary directory.

The repository root is on the import path (pyproject's pytest ``pythonpath``, and the .pth file
tools/lib/setup.sh writes into the virtual environment), so tests, tests/bundle/testbundle.py and
benchmarks/ import ``tests.support.<module>``.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (also the collection island.installer)."""
