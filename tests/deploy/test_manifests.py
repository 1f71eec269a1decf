"""The deployment files hang together: the Kubernetes manifests render with ``kubectl
kustomize`` and wire probes, config and keys to what the image and the gateway serve; the
compose file runs several workers on PostgreSQL and Redis; the config both use loads in
dragoman's own loader; the Dockerfile is the multi-stage, non-root image the docs
describe. (``scripts/test-image`` builds and runs the image itself.)"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dragoman.config import build_gateway, load_config

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
ENV = {"GATEWAY_KEY": "gw-key", "OPENAI_API_KEY": "sk-x",
       "DATABASE_URL": "postgresql://dragoman:pw@postgres:5432/dragoman",
       "REDIS_URL": "redis://redis:6379/0"}


def _render() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl is not installed (scripts/test installs kubernetes-client)")
    out = subprocess.run([kubectl, "kustomize", str(K8S)], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in _render()}


def test_kustomize_renders_configmap_deployment_service(
        rendered: dict[str, dict[str, Any]]) -> None:
    assert set(rendered) == {"ConfigMap", "Deployment", "Service"}
    dep, svc, cm = rendered["Deployment"], rendered["Service"], rendered["ConfigMap"]
    pod = dep["spec"]["template"]
    (c,) = pod["spec"]["containers"]
    # probes: liveness/startup on /healthz, readiness on /readyz, on the container's port
    port_names = {p["name"]: p["containerPort"] for p in c["ports"]}
    for probe, path in (("livenessProbe", "/healthz"), ("startupProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        get = c[probe]["httpGet"]
        assert get["path"] == path and get["port"] in port_names
    assert c["args"][c["args"].index("--port") + 1] == str(port_names["http"])
    assert int(c["args"][c["args"].index("--workers") + 1]) > 1
    # config from the generated ConfigMap (hash-suffixed name), mounted where args say
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert volumes["config"]["configMap"]["name"] == cm["metadata"]["name"]
    assert re.fullmatch(r"dragoman-config-[a-z0-9]+", cm["metadata"]["name"])
    config_path = c["args"][c["args"].index("--config") + 1]
    assert config_path == mounts["config"]["mountPath"] + "/dragoman.yaml"
    assert mounts["config"]["readOnly"] is True
    # keys from a Secret, never in the manifests
    assert c["envFrom"] == [{"secretRef": {"name": "dragoman-keys"}}]
    assert "env" not in c
    # non-root, no privilege
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    # the Service reaches these pods on the named port
    labels = pod["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert dep["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert svc["spec"]["ports"][0]["targetPort"] == "http"


def test_configmap_config_loads_and_builds(rendered: dict[str, dict[str, Any]],
                                           tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """The config the ConfigMap carries is valid for dragoman (every ``${VAR}`` the Secret
    provides): PostgreSQL sessions and Redis limits."""
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    path = tmp_path / "dragoman.yaml"
    path.write_text(rendered["ConfigMap"]["data"]["dragoman.yaml"])
    cfg = load_config(path)
    assert cfg.sessions.backend == "postgres" and cfg.sessions.dsn == ENV["DATABASE_URL"]
    assert cfg.limits is not None and cfg.limits.backend == "redis"
    assert cfg.server.api_keys == [ENV["GATEWAY_KEY"]]
    gw = build_gateway(cfg)
    assert {r.name for r in gw.models.routes()} >= {"gpt-4o-mini", "dragoman/echo"}
    # the Secret example names exactly the variables the config reads
    secret = yaml.safe_load((K8S / "secret.example.yaml").read_text())
    assert set(secret["stringData"]) == set(ENV)


def test_compose_runs_several_workers_on_postgres_and_redis() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "redis", "dragoman"} <= set(services)
    gw = services["dragoman"]
    assert gw["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                "redis": {"condition": "service_healthy"}}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"][0] == "CMD"
    cmd = gw["command"]
    assert int(cmd[cmd.index("--workers") + 1]) > 1
    # the same config file as the ConfigMap, mounted where --config points
    (mount,) = gw["volumes"]
    src, dest, mode = mount.split(":")
    assert (ROOT / "deploy" / src).resolve() == K8S / "dragoman.yaml"
    assert dest == cmd[cmd.index("--config") + 1] and mode == "ro"
    env = gw["environment"]
    assert set(ENV) <= set(env)
    assert "@postgres:5432/" in env["DATABASE_URL"] and env["REDIS_URL"].startswith(
        "redis://redis:")
    assert (ROOT / "deploy" / gw["build"]["context"]).resolve() == ROOT


def test_dockerfile_is_multistage_nonroot_with_healthcheck() -> None:
    lines = [ln.strip() for ln in (ROOT / "Dockerfile").read_text().splitlines()
             if ln.strip() and not ln.lstrip().startswith("#")]
    froms = [ln for ln in lines if ln.startswith("FROM ")]
    assert lines[0].startswith("ARG BASE_IMAGE=")  # before the first FROM: usable in both
    assert len(froms) == 2 and all(f.split()[1] == "${BASE_IMAGE}" for f in froms)
    assert any("COPY --from=build" in ln for ln in lines)
    (user,) = [ln for ln in lines if ln.startswith("USER ")]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    text = "\n".join(lines)
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'ENTRYPOINT ["dragoman", "serve"]' in lines
