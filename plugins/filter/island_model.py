# Copyright: island installer contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The island model as filters (plugins/module_utils/island_model.py, docs/architecture.md).

`groups | island_model(hostvars, island_domain, island_names)` is the `island` fact that
playbooks/model.yml sets; the receipt's filters turn the model and what the hosts reported into
the island_receipt module's inputs.
"""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.island.installer.plugins.module_utils import island_model as model
from ansible_collections.island.installer.plugins.module_utils import island_model_receipt as receipt


def island_model(groups, hostvars, domain, names=None):
    """The `island` fact: components, hosts, services, tenants (island_model.island)."""
    try:
        return model.island(groups, hostvars, domain, names)
    except model.ModelError as err:
        raise AnsibleFilterError(str(err)) from err


def island_receipt_hosts(all_hosts, reached, hostvars):
    return receipt.receipt_hosts(all_hosts, reached, hostvars)


def island_receipt_certificates(results):
    return receipt.receipt_certificates(results)


def island_receipt_registries(island):
    return receipt.receipt_registries(island)


def island_receipt_gitea(island):
    return receipt.receipt_gitea(island)


def island_minio_tenants(tenants):
    """The buckets, policies and users MinIO provisions for its consumers' tenants."""
    return model.minio_tenants(tenants)


def island_minio_user_secret(access_key):
    """The secret file name of a MinIO user's key (island_secrets_dir/<name>)."""
    return model.minio_user_secret(str(access_key))


class FilterModule:
    def filters(self):
        return {
            "island_model": island_model,
            "island_receipt_hosts": island_receipt_hosts,
            "island_receipt_certificates": island_receipt_certificates,
            "island_receipt_registries": island_receipt_registries,
            "island_receipt_gitea": island_receipt_gitea,
            "island_minio_tenants": island_minio_tenants,
            "island_minio_user_secret": island_minio_user_secret,
        }
