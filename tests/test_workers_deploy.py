"""The deployment files: docker-compose.yml services, health checks, volumes, no secrets, and the
env example that documents every variable the services read."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def test_compose_has_every_service_with_health_checks_and_volumes() -> None:
    compose = _compose()
    services = compose["services"]
    assert {"app", "worker", "crawler", "scheduler", "opensearch", "redis", "migrate"} <= set(services)
    for name in ("app", "opensearch", "redis"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("app", "worker", "crawler", "scheduler"):
        deps = services[name]["depends_on"]
        assert deps["opensearch"]["condition"] == deps["redis"]["condition"] == "service_healthy"
        assert services[name]["env_file"] == "deploy/langnghe.env"
    assert {"langnghe-data", "opensearch-data", "redis-data"} <= set(compose["volumes"])
    assert services["worker"]["deploy"]["replicas"] >= 2
    assert services["migrate"]["profiles"] == ["migrate"]


def test_only_the_app_is_published_and_only_on_loopback() -> None:
    services = _compose()["services"]
    published = {name: s.get("ports", []) for name, s in services.items() if s.get("ports")}
    assert list(published) == ["app"]
    assert all(str(p).startswith("127.0.0.1:") for p in published["app"])


def test_no_secret_is_committed() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert not re.search(r"(?i)(password|secret|token)\s*[:=]\s*[^\s$\"'{]", text)
    example = (REPO / "deploy" / "langnghe.env.example").read_text(encoding="utf-8")
    for line in example.splitlines():
        if re.match(r"^(REDIS_PASSWORD|LANGNGHE_REDIS_URL)=", line):
            assert "CHANGE_ME" in line, line
    assert not (REPO / "deploy" / "langnghe.env").exists() or "langnghe.env" in (
        REPO / "deploy" / "Dockerfile.dockerignore").read_text(encoding="utf-8")


def test_env_example_names_what_the_services_read() -> None:
    example = (REPO / "deploy" / "langnghe.env.example").read_text(encoding="utf-8")
    defined = {line.split("=", 1)[0] for line in example.splitlines() if "=" in line and not line.startswith("#")}
    used = set(re.findall(r"\$\$\{(\w+)", (REPO / "docker-compose.yml").read_text(encoding="utf-8")))
    assert used <= defined, used - defined
    assert {"LANGNGHE_STORE_URL", "LANGNGHE_REDIS_URL"} <= defined


def test_dockerfile_installs_the_packages_the_commands_need() -> None:
    dockerfile = (REPO / "deploy" / "Dockerfile").read_text(encoding="utf-8")
    for package in ("langnghe", "crawlers", "nlp", "storage", "api", "workers", "models"):
        assert f"COPY {package} ./{package}" in dockerfile
    assert "USER langnghe" in dockerfile
