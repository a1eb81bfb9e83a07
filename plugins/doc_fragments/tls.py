# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the TLS option every island client module shares (``island.installer.tls``)."""

from __future__ import annotations


class ModuleDocFragment:
    # The option itself comes from module_utils/island_argspec.TLS.
    DOCUMENTATION = r"""
options:
  ca_file:
    description:
      - PEM file with the CA that signed the server's certificate (the island CA). Without it the
        system trust store is used. There is deliberately no option to skip verification.
    type: path
"""
