"""Cluster settings: parsing and validation, the node list the client fails over between, the collection layout
sent to Weaviate, and the jobs' retry window with failover (no server needed)."""

from __future__ import annotations

import threading
import time

import pytest

from recommender.config import WeaviateSettings, load_settings
from recommender.errors import ConfigError, StoreError, StoreUnavailable
from recommender.store.client import Endpoint, endpoints, looks_unreachable
from recommender.store.ports import free_port_runs
from recommender.store.retry import bounded, retried_write
from recommender.store.schema import VECTOR_NAMES, collection_config


def test_cluster_settings_are_read_from_env_and_toml(tmp_path) -> None:  # type: ignore[no-untyped-def]
    toml = tmp_path / "c.toml"
    toml.write_text('[weaviate]\nreplication_factor = 3\nshards = 2\ncompression_text = "rq"\n')
    s = load_settings(env={"RECSYS_WEAVIATE__READ_CONSISTENCY": "one", "RECSYS_WEAVIATE__ASYNC_REPLICATION": "true",
                           "RECSYS_WEAVIATE__RETRY_WINDOW_S": "60"}, config_file=toml).weaviate
    assert (s.replication_factor, s.shards, s.async_replication, s.retry_window_s) == (3, 2, True, 60.0)
    assert s.read_consistency == "one" and s.write_consistency == "QUORUM"
    assert [getattr(s, f"compression_{v}") for v in VECTOR_NAMES] == ["rq", "none", "none"]


@pytest.mark.parametrize(("env", "named"), [
    ({"RECSYS_WEAVIATE__WRITE_CONSISTENCY": "MOST"}, "weaviate.write_consistency"),
    ({"RECSYS_WEAVIATE__COMPRESSION_IMAGE": "zip"}, "weaviate.compression_image"),
    ({"RECSYS_WEAVIATE__READ_CONSISTENCY": ""}, "weaviate.read_consistency"),
])
def test_bad_cluster_settings_name_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        load_settings(env=env)


def test_node_lists_pair_http_and_grpc_addresses_in_order() -> None:
    many = WeaviateSettings(url="http://w1:8080, https://w2", grpc_url="w1:50051,w2:443")
    assert endpoints(many) == [Endpoint("w1", 8080, "w1", 50051), Endpoint("w2", 443, "w2", 443, secure=True)]
    same_ports = WeaviateSettings(url="http://a:8080,http://b:8080,http://c:8080")
    assert [(e.http_host, e.grpc_host, e.grpc_port) for e in endpoints(same_ports)] == [
        ("a", "a", 50051), ("b", "b", 50051), ("c", "c", 50051)]
    local = WeaviateSettings(nodes=3, http_port=9000, grpc_port=9100)
    assert [(e.http_port, e.grpc_port) for e in endpoints(local)] == [(9000, 9100), (9001, 9101), (9002, 9102)]
    with pytest.raises(StoreError, match="2 addresses for 3"):
        endpoints(WeaviateSettings(url="http://a,http://b,http://c", grpc_url="a:1,b:2"))


def test_collection_layout_carries_shards_replication_and_compression_per_vector() -> None:
    plain = collection_config(WeaviateSettings())
    assert "replication_config" not in plain and "sharding_config" not in plain
    assert all(v.vectorIndexConfig.quantizer is None for v in plain["vector_config"])
    config = collection_config(WeaviateSettings(shards=3, replication_factor=3, async_replication=True,
                                                compression_text="rq", compression_image="pq",
                                                compression_behavior="bq", compression_training_limit=5000))
    assert config["sharding_config"].desiredCount == 3
    assert config["replication_config"].factor == 3 and config["replication_config"].asyncEnabled is True
    quantizers = {v.name: v.vectorIndexConfig.quantizer for v in config["vector_config"]}
    assert {k: type(q).__name__ for k, q in quantizers.items()} == {
        "text": "_RQConfigCreate", "image": "_PQConfigCreate", "behavior": "_BQConfigCreate"}
    assert quantizers["image"].trainingLimit == 5000


def test_consecutive_free_ports_are_distinct_and_bindable() -> None:
    starts = free_port_runs(3, length=3, exclude=frozenset({1}))
    ports = [p + i for p in starts for i in range(3)]
    assert len(set(ports)) == 9


def test_unreachable_errors_are_told_from_refusals() -> None:
    assert looks_unreachable("cannot achieve consistency level QUORUM: broadcast: connection refused")
    assert not looks_unreachable("property 'price' is not a number")
    try:  # the client's wrapper message says nothing; the gRPC status it was raised from does
        try:
            raise OSError("StatusCode.DEADLINE_EXCEEDED")
        except OSError as inner:
            raise ValueError("Query call with protocol GRPC batch failed") from inner
    except ValueError as wrapped:
        assert looks_unreachable(wrapped)
    assert not looks_unreachable(ValueError("Query call with protocol GRPC batch failed"))


class Nodes:
    """A store over ``healthy_from``.. nodes: calls on a node below it fail as unreachable; failover moves on."""

    def __init__(self, retries: int, window_s: float, healthy_from: int = 1, nodes: int = 3) -> None:
        self.query_timeout_s, self.retries, self.retry_window_s = 0.0, retries, window_s
        self.node, self.nodes, self.healthy_from, self.calls = 0, nodes, healthy_from, 0
        self._pool = None  # type: ignore[var-annotated]
        self.lock = threading.Lock()

    def failover(self) -> bool:
        if self.nodes < 2:
            return False
        self.node = (self.node + 1) % self.nodes
        return True

    def work(self) -> str:
        self.calls += 1
        if self.node < self.healthy_from:
            raise StoreUnavailable(f"node {self.node}: connection refused")
        return f"node {self.node}"

    @bounded
    def read(self) -> str:
        return self.work()


def test_a_request_is_tried_once_more_on_the_next_node() -> None:
    store = Nodes(retries=0, window_s=0)
    assert store.read() == "node 1" and store.calls == 2
    single = Nodes(retries=0, window_s=0, nodes=1)
    with pytest.raises(StoreUnavailable):
        single.read()


def test_a_job_write_keeps_retrying_through_the_window_then_gives_up() -> None:
    store = Nodes(retries=1, window_s=0.0)
    assert retried_write(store, store.work) == "node 1" and store.calls == 2  # retried on the next node
    down = Nodes(retries=1, window_s=1.2, healthy_from=99)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match="connection refused"):
        retried_write(down, down.work)
    assert time.monotonic() - started >= 1.2 and down.calls >= 3  # the window, not the attempt count, stopped it
