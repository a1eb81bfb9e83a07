"""The tags an operator may give: a tag no play carries, or one that would skip the prologue, is
refused with the list of tags that exist (plugins/module_utils/island_tags.py)."""

from __future__ import annotations

import pytest
from ansible_collections.island.installer.plugins.filter.island_tags import island_tag_problems
from ansible_collections.island.installer.plugins.module_utils.island_tags import (
    COMPONENT_TAGS,
    PROLOGUE_TAGS,
    known_tags,
    tag_problems,
)


def test_the_default_run_and_every_component_tag_are_accepted():
    assert tag_problems(["all"], []) == []
    assert tag_problems(list(COMPONENT_TAGS), []) == []
    assert tag_problems(["registry", "always"], ["gitea", "k3s", "never"]) == []
    assert island_tag_problems(["tagged"], None) == []


def test_a_tag_no_play_carries_is_refused_listing_the_tags_that_exist():
    problems = tag_problems(["registry", "regsitry"], [])
    assert len(problems) == 1
    assert problems[0].startswith("--tags regsitry: no play of the island carries this tag")
    listing = "The tags that exist: model, bundle, upgrade, preflight, pki, dns, minio, registry, gitea, k3s"
    assert listing in problems[0]


def test_molecules_own_skip_tags_are_accepted():
    assert tag_problems(["all"], ["molecule-notest", "notest", "molecule-idempotence-notest"]) == []


def test_an_unknown_skip_tag_is_refused_too_since_it_would_skip_nothing():
    (problem,) = tag_problems(["all"], ["gittea"])
    assert problem.startswith("--skip-tags gittea: no play of the island carries this tag")
    assert "gitea" in problem


@pytest.mark.parametrize("tag", [*PROLOGUE_TAGS, "always", "all", "tagged"])
def test_skipping_the_prologue_is_refused_naming_what_may_be_skipped(tag):
    (problem,) = tag_problems(["all"], [tag])
    assert problem.startswith(f"--skip-tags {tag}: would skip")
    assert "or skip one of pki, dns, minio, registry, gitea, k3s, monitoring, receipt, summary" in problem


def test_untagged_selects_nothing_since_every_play_is_tagged():
    (problem,) = tag_problems(["untagged"], [])
    assert "selects nothing here" in problem


def test_every_problem_is_reported_at_once_in_a_stable_order():
    problems = island_tag_problems(["zz", "aa", "aa"], ["bundle", "qq"])
    assert [p.split(":", 1)[0] for p in problems] == [
        "--tags aa",
        "--tags zz",
        "--skip-tags bundle",
        "--skip-tags qq",
    ]


def test_tags_given_as_a_comma_separated_string_are_read_as_ansible_splits_them():
    assert tag_problems("registry, gitea", "") == []
    assert len(tag_problems("registry,nope", None)) == 1


def test_tags_of_another_type_are_a_type_error_naming_the_argument():
    with pytest.raises(TypeError, match="run_tags must be a list"):
        tag_problems(3, [])


def test_the_known_tags_are_the_component_tags_in_site_order_and_a_copy():
    tags = known_tags()
    assert tags == list(COMPONENT_TAGS)
    tags.append("x")
    assert "x" not in known_tags()
    assert set(PROLOGUE_TAGS) <= set(COMPONENT_TAGS)
