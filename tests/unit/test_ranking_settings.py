"""Configuring which named candidate sources the online ranker uses."""

from __future__ import annotations

import pytest

from recommender.config import RankingSettings, load_settings
from recommender.errors import ConfigError
from recommender.ranking.service import SOURCE_NAMES, enabled_sources


def test_default_enables_every_source() -> None:
    assert enabled_sources(RankingSettings().sources) == set(SOURCE_NAMES)


def test_a_subset_from_the_environment() -> None:
    s = load_settings(env={"RECSYS_RANKING__SOURCES": "text, cooccurrence,popularity"})
    assert enabled_sources(s.ranking.sources) == {"text", "cooccurrence", "popularity"}


@pytest.mark.parametrize("spec", ["text,magic", "", " , "])
def test_unknown_or_empty_is_a_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"ranking\.sources"):
        enabled_sources(spec)
