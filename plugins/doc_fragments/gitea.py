# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the Gitea connection options (``island.installer.gitea``, ``.connection``)."""

from __future__ import annotations


class ModuleDocFragment:
    # The options themselves come from module_utils/island_argspec (gitea_module_args). Use with
    # island.installer.tls for ca_file. DOCUMENTATION: the URL and the credentials; CONNECTION: the
    # URL alone, for a module with credentials of its own.
    CONNECTION = r"""
options:
  url:
    description: Base URL of Gitea over HTTPS (plain http is refused), for example C(https://git.island.internal:3000).
    type: str
    required: true
"""

    DOCUMENTATION = (
        CONNECTION
        + r"""
  username:
    description: User for basic authentication (with O(password)).
    type: str
  password:
    description: Password of O(username).
    type: str
  token:
    description:
      - Access token, instead of O(username) and O(password). Scope C(all), or the write scopes
        the module's description names.
    type: str
"""
    )
