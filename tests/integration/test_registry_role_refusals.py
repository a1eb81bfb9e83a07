"""The registry role refuses bad S3 storage input and clashing ports before any host is touched.

The play runs the role against a host with the local connection and a bundle-less island; the
validation is the role's first task, so input that got through would fail on a later task (the
secrets or the service install), never touch another machine.
"""

from __future__ import annotations

import pytest

from tests.support.playbook import TEST_ISLAND, local_inventory, refused, run_role

BAD_INPUT = {
    # distribution 2.8.2 ignores keys it does not read; 3.0's forcepathstyle would be dropped silently.
    "a_key_2_8_2_does_not_read": (
        {"registry_storage": "s3", "registry_s3": {"forcepathstyle": True}},
        "registry_s3 has keys distribution 2.8.2's s3 driver does not read (it would ignore them silently): "
        "forcepathstyle",
    ),
    "the_secret_in_the_inventory": (
        {"registry_storage": "s3", "registry_s3": {"secretkey": "in-clear"}},
        "registry_s3 must not hold secretkey",
    ),
    "no_region": (
        {"registry_storage": "s3", "registry_s3": {"region": ""}},
        "registry_s3 needs a bucket, an accesskey and a region",
    ),
    "plain_http_endpoint": (
        {"registry_storage": "s3", "registry_s3": {"regionendpoint": "http://s3.island.test:9000"}},
        "registry_s3.regionendpoint must be https://<host>:<port>",
    ),
    "certificate_not_verified": (
        {"registry_storage": "s3", "registry_s3": {"skipverify": True}},
        "registry_s3.skipverify would accept any certificate",
    ),
    "same_ports": (
        {"registry_push_port": 5000},
        "registry_port, registry_push_port, registry_metrics_port and registry_push_metrics_port must "
        "differ (they are 5000, 5000, 5002, 5003)",
    ),
    "a_metrics_port_on_an_endpoint": (
        {"registry_push_metrics_port": 5001},
        "registry_push_metrics_port must differ (they are 5000, 5001, 5002, 5001)",
    ),
}


def _run(tmp_path, extra_vars):
    inventory = local_inventory(
        {"island_registry": ["reg1"]},
        {"reg1": {"island_address": "10.98.0.10"}},
        **{
            **TEST_ISLAND,
            "island_bundle_dir": str(tmp_path / "no-bundle"),
            "island_pki_dir": str(tmp_path / "pki"),
            "island_secrets_dir": str(tmp_path / "secrets"),
            **extra_vars,
        },
    )
    return run_role(tmp_path, inventory, "island_registry", "registry")


@pytest.mark.parametrize("case", sorted(BAD_INPUT))
def test_the_registry_role_refuses_bad_storage_input_before_any_change(tmp_path, case):
    extra, message = BAD_INPUT[case]
    output = refused(_run(tmp_path, extra))
    assert message in output, output
    assert "TASK [registry : Secrets of the registry are known]" not in output
    assert not (tmp_path / "secrets").exists()


def test_s3_without_the_minio_users_secret_says_to_run_the_minio_role_first(tmp_path):
    output = refused(_run(tmp_path, {"registry_storage": "s3"}))
    assert f"{tmp_path}/secrets/minio-user-island-registry does not exist on the controller" in output
    assert "run the minio role first" in output
    assert "TASK [common : The service has its own system user" not in output
