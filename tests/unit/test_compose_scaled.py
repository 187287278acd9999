"""The scaled docker-compose layout, checked offline (no Docker here): the Weaviate nodes agree on the cluster
(names, RAFT_JOIN, bootstrap count, join address and ports), every recsys process points at every node, at the
PostgreSQL service and at the Ray head, its settings are real ones, and nginx proxies to exactly the API replicas."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from recommender.config import Settings, load_settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.scaled.yml"
# settings the cluster and Ray work add (issue #16 items 1-2); validated like the others once they exist
FROM_OTHER_WORK = {"weaviate.replication_factor", "weaviate.async_replication", "vectorize.engine",
                   "vectorize.ray_address"}


@pytest.fixture(scope="module")
def services() -> dict[str, dict[str, Any]]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def env(service: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v) for k, v in (service.get("environment") or {}).items()}


def weaviate_nodes(services: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {name: env(s) for name, s in services.items() if str(s.get("image", "")).startswith(
        "cr.weaviate.io/semitechnologies/weaviate")}


def test_the_layout_has_every_part(services: dict[str, dict[str, Any]]) -> None:
    assert len(weaviate_nodes(services)) == 3
    assert {"postgres", "ray-head", "ray-worker", "api-1", "api-2", "proxy"} <= set(services)
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_the_weaviate_nodes_agree_on_the_cluster(services: dict[str, dict[str, Any]]) -> None:
    nodes = weaviate_nodes(services)
    names = [e["CLUSTER_HOSTNAME"] for e in nodes.values()]
    assert len(set(names)) == len(nodes)
    expected_join = {f"{e['CLUSTER_HOSTNAME']}:{e['RAFT_PORT']}" for e in nodes.values()}
    first = next(iter(nodes))
    for service, e in nodes.items():
        assert set(e["RAFT_JOIN"].split(",")) == expected_join, service  # the same voter list on every node
        assert int(e["RAFT_BOOTSTRAP_EXPECT"]) == len(nodes), service
        assert int(e["RAFT_INTERNAL_RPC_PORT"]) == int(e["RAFT_PORT"]) + 1, service
        assert len({e["CLUSTER_GOSSIP_BIND_PORT"], e["CLUSTER_DATA_BIND_PORT"], e["RAFT_PORT"],
                    e["RAFT_INTERNAL_RPC_PORT"], e["GRPC_PORT"], "8080"}) == 6, service
        if service == first:
            assert "CLUSTER_JOIN" not in e
        else:  # the others join the first node's gossip port, by its service name
            assert e["CLUSTER_JOIN"] == f"{first}:{nodes[first]['CLUSTER_GOSSIP_BIND_PORT']}", service
        assert services[service].get("volumes"), service
    volumes = [services[s]["volumes"][0].split(":")[0] for s in nodes]
    assert len(set(volumes)) == len(nodes)  # one data volume per node


def test_every_recsys_process_is_wired_to_the_cluster_postgres_and_ray(services: dict[str, dict[str, Any]]) -> None:
    nodes = weaviate_nodes(services)
    pg = env(services["postgres"])
    head_port = next(int(a.split("=")[1]) for a in services["ray-head"]["command"] if a.startswith("--port="))
    recsys = {name: env(s) for name, s in services.items() if "RECSYS_DATA_DIR" in env(s)}
    assert {"api-1", "api-2", "ray-head", "ray-worker", "refresh", "migrate-events"} <= set(recsys)
    for name, e in recsys.items():
        assert [urlsplit(u).hostname for u in e["WEAVIATE_URL"].split(",")] == list(nodes), name
        assert [g.split(":")[0] for g in e["WEAVIATE_GRPC_URL"].split(",")] == list(nodes), name
        assert {g.split(":")[1] for g in e["WEAVIATE_GRPC_URL"].split(",")} == {n["GRPC_PORT"] for n in nodes.values()}
        events = urlsplit(e["RECSYS_EVENTS__URL"])
        assert (events.scheme, events.hostname, events.username, events.path) == (
            "postgresql", "postgres", pg["POSTGRES_USER"], f"/{pg['POSTGRES_DB']}"), name
        assert events.password is None and e["PGPASSWORD"] == pg["POSTGRES_PASSWORD"], name  # no secret in the URL
        assert e["RECSYS_VECTORIZE__RAY_ADDRESS"] == f"ray-head:{head_port}", name
    assert f"--address=ray-head:{head_port}" in services["ray-worker"]["command"]
    migrate = services["migrate-events"]["command"]
    assert migrate[migrate.index("--to") + 1] == recsys["api-1"]["RECSYS_EVENTS__URL"]


def test_the_settings_are_real_settings(services: dict[str, dict[str, Any]]) -> None:
    """Every RECSYS_ variable names a setting and holds a value of its type (load_settings stops on anything else)."""
    known = {f"{section.name}.{f.name}" for section in fields(Settings)
             if section.name not in ("data_dir", "cache_dir", "explicit")
             for f in fields(getattr(Settings(), section.name))}
    for name, service in services.items():
        e = env(service)
        pending = {k for k in e if k.startswith("RECSYS_") and "__" in k
                   and k[7:].lower().replace("__", ".") not in known}
        assert {k[7:].lower().replace("__", ".") for k in pending} <= FROM_OTHER_WORK, name
        checked = {k: v for k, v in e.items() if k not in pending and "${" not in v}
        load_settings(checked)


def test_nginx_proxies_to_exactly_the_api_replicas(services: dict[str, dict[str, Any]]) -> None:
    mount = next(v for v in services["proxy"]["volumes"] if v.endswith("/etc/nginx/nginx.conf:ro"))
    conf = (REPO / mount.split(":")[0]).read_text()
    upstreams = set(re.findall(r"^\s*server\s+([\w.-]+:\d+)", conf, re.MULTILINE))
    apis = {name for name, s in services.items() if "gunicorn" in s.get("command", [])}
    binds = {name: services[name]["command"][services[name]["command"].index("--bind") + 1] for name in apis}
    assert upstreams == {f"{name}:{bind.rsplit(':', 1)[1]}" for name, bind in binds.items()}
    assert len(apis) == 2
    listen = re.search(r"listen\s+(\d+);", conf)
    assert listen and services["proxy"]["ports"] == [f"127.0.0.1:8000:{listen.group(1)}"]
    assert conf.count("{") == conf.count("}")


def test_secrets_come_from_the_environment(services: dict[str, dict[str, Any]]) -> None:
    text = COMPOSE.read_text()
    for variable in re.findall(r"\$\{([^}]+)\}", text):
        assert ":?" in variable or ":-" in variable, f"${{{variable}}} has neither a default nor an error message"
    assert env(services["postgres"])["POSTGRES_PASSWORD"].startswith("${RECSYS_PG_PASSWORD:?")
