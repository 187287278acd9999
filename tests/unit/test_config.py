"""Settings: defaults, TOML, environment and overrides, with clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.config import Settings, load_settings
from recommender.errors import ConfigError


def test_defaults_without_env_or_file() -> None:
    s = load_settings(env={})
    assert s == Settings()
    assert s.weaviate.url is None
    assert s.text_encoder.model == "all-MiniLM-L6-v2"
    assert s.weaviate_binary.name == "weaviate-server"
    assert s.weaviate_data_dir == Path("data") / "weaviate"


def test_precedence_toml_then_env_then_overrides(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text('data_dir = "/srv/a"\n[weaviate]\nhttp_port = 9000\ngrpc_port = 9001\n'
                    '[vectorize]\nchunk_size = 64\n')
    env = {"RECSYS_WEAVIATE__HTTP_PORT": "9100", "WEAVIATE_URL": "https://wv.example:443",
           "WEAVIATE_API_KEY": "k", "RECSYS_IMAGE_ENCODER__CHECKPOINT": "~/ckpt.pt"}
    s = load_settings(env=env, config_file=toml, overrides={"weaviate.grpc_port": 9200, "data_dir": None})
    assert s.data_dir == Path("/srv/a")
    assert s.weaviate.http_port == 9100  # env beats TOML
    assert s.weaviate.grpc_port == 9200  # overrides beat TOML
    assert s.vectorize.chunk_size == 64
    assert s.weaviate.url == "https://wv.example:443" and s.weaviate.api_key == "k"
    assert s.image_encoder.checkpoint == Path("~/ckpt.pt").expanduser()


def test_config_file_from_env(tmp_path: Path) -> None:
    toml = tmp_path / "s.toml"
    toml.write_text("[text_encoder]\nmodel = '/models/mini'\n")
    assert load_settings(env={"RECSYS_CONFIG": str(toml)}).text_encoder.model == "/models/mini"


def test_empty_optional_means_none() -> None:
    assert load_settings(env={"WEAVIATE_URL": ""}).weaviate.url is None


@pytest.mark.parametrize("env,needle", [
    ({"RECSYS_WEAVIATE__HTTP_PORT": "eighty"}, "weaviate.http_port"),
    ({"RECSYS_NOPE__X": "1"}, "nope"),
    ({"RECSYS_WEAVIATE__PROT": "1"}, "prot"),
    ({"RECSYS_VECTORIZE__MAX_DELETE_FRACTION": "lots"}, "max_delete_fraction"),
])
def test_bad_values_name_the_setting(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        load_settings(env=env)


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[weaviate\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_settings(env={}, config_file=bad)
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={}, config_file=tmp_path / "missing.toml")


def test_what_was_set_explicitly_is_recorded_by_dotted_key_and_cannot_itself_be_set(tmp_path: Path) -> None:
    """The refresh's tune stage leaves these keys alone (``Settings.explicit``); defaults are not explicit."""
    toml = tmp_path / "c.toml"
    toml.write_text('[collaborative]\nalpha = 3\n[refresh]\nretune_days = 1\n')
    s = load_settings({"RECSYS_COLLABORATIVE__FACTORS": "8"}, toml, {"data_dir": tmp_path, "cache_dir": None})
    assert s.explicit == {"collaborative.alpha", "collaborative.factors", "refresh.retune_days", "data_dir"}
    assert (s.collaborative.alpha, s.collaborative.factors, s.refresh.retune_days) == (3.0, 8, 1.0)
    assert load_settings({}).explicit == frozenset()
    toml.write_text('explicit = "collaborative.alpha"\n')
    with pytest.raises(ConfigError, match="unknown setting"):
        load_settings({}, toml)
