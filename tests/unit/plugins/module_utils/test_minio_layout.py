"""A MinIO deployment's layout as upstream expands and accepts it (module_utils/island_minio_layout.py,
after MinIO's cmd/endpoint-ellipses.go)."""

from __future__ import annotations

from ansible_collections.island.installer.plugins.module_utils.island_minio_layout import (
    expand_hosts,
    layout,
    set_sizes,
)


def test_a_single_drive_is_the_drive_path_itself():
    result = layout(["infra1"], 1, "/var/lib/minio/data", "island.internal", 9000)
    assert result["drives"] == ["/var/lib/minio/data"]
    assert result["volumes"] == "/var/lib/minio/data"
    assert result["distributed"] is False
    assert result["drive_total"] == 1


def test_several_drives_on_one_host_are_numbered_and_written_with_an_ellipsis():
    result = layout(["infra1"], 4, "/mnt/disk", "island.internal", 9000)
    assert result["drives"] == ["/mnt/disk1", "/mnt/disk2", "/mnt/disk3", "/mnt/disk4"]
    assert result["volumes"] == "/mnt/disk{1...4}"
    assert result["set_sizes"] == [2, 4]


def test_a_distributed_deployment_names_its_hosts_with_upstreams_expansion_and_its_port():
    result = layout(["minio1", "minio2", "minio3", "minio4"], 1, "/data", "island.internal", 9443)
    assert result["volumes"] == "https://minio{1...4}.island.internal:9443/data"
    assert result["hosts_in_sequence"] is True
    assert result["set_sizes"] == [2, 4]


def test_zero_padded_host_numbers_expand_as_upstream_pads_them():
    assert expand_hosts("01", "04", "m") == ["m01", "m02", "m03", "m04"]
    assert expand_hosts("8", "10", "m") == ["m8", "m9", "m10"]
    assert layout(["m01", "m02"], 1, "/d", "i.test", 9000)["hosts_in_sequence"] is True


def test_hosts_with_a_gap_another_prefix_or_no_number_are_not_in_sequence():
    assert layout(["minio1", "minio3"], 1, "/d", "i.test", 9000)["hosts_in_sequence"] is False
    assert layout(["minio1", "store2"], 1, "/d", "i.test", 9000)["hosts_in_sequence"] is False
    assert layout(["minio1", "minio"], 1, "/d", "i.test", 9000)["hosts_in_sequence"] is False


def test_a_prime_drive_count_has_one_set_of_all_drives_or_none_above_16():
    assert layout(["m1", "m2", "m3"], 1, "/d", "i.test", 9000)["set_sizes"] == [3]
    assert set_sizes(5, 5) == [5]
    assert set_sizes(17, 17) == []
    # 7 x 17 drives over 17 hosts: 7 divides the drives but not the hosts, 17 is above 16.
    assert set_sizes(7 * 17, 17) == []


def test_erasure_sets_are_symmetric_with_the_hosts_when_distributed():
    # 2 hosts x 4 drives = 8 drives: sets of 2, 4 or 8 (each a multiple of the 2 hosts).
    assert layout(["m1", "m2"], 4, "/d", "i.test", 9000)["set_sizes"] == [2, 4, 8]
    # 4 hosts x 3 drives = 12 drives: 2 and 4 divide the hosts, 12 is a multiple of them; 3 and 6 are not.
    assert layout(["m1", "m2", "m3", "m4"], 3, "/d", "i.test", 9000)["set_sizes"] == [2, 4, 12]


def test_no_drive_gives_no_drives_and_no_sets_rather_than_a_division_by_zero():
    result = layout(["infra1"], 0, "/d", "i.test", 9000)
    assert result["drives"] == []
    assert result["set_sizes"] == []
