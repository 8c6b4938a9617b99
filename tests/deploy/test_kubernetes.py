"""deploy/kubernetes: every overlay renders with kustomize and validates against the Kubernetes schemas,
and the rendered objects keep the promises the README makes (probes, limits, non-root, read-only root,
no `latest`, a PDB that lets a node drain, no Secret in git, config changes roll the pods)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBE = REPO / "deploy" / "kubernetes"
OVERLAYS = ("production", "socket-mode")
KUBERNETES_VERSION = "1.32"
# Custom resources the schemas above do not know; checked by hand below.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}


def render(overlay: Path) -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("NOT TESTED: kubectl (with kustomize) is not installed on this machine")
    out = subprocess.run(
        [kubectl, "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(overlay)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(KUBE / "overlays" / request.param)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = of_kind(objects, "Deployment")
    return found


def test_every_object_validates_against_the_kubernetes_schemas(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    kinds = set()
    for obj in objects:
        kinds.add(obj["kind"])
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"} <= kinds


def test_a_broken_object_is_caught_by_the_validation() -> None:
    objects = render(KUBE / "overlays" / "socket-mode")
    broken = deployment(objects)
    broken["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"] = "http"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_every_container_has_probes_resources_and_a_locked_down_context(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    pod = deployment(objects)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"] + pod.get("initContainers", []):
        ctx = container["securityContext"]
        assert ctx["readOnlyRootFilesystem"] is True, container["name"]
        assert ctx["allowPrivilegeEscalation"] is False, container["name"]
        assert ctx["capabilities"]["drop"] == ["ALL"], container["name"]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (container["name"], kind)
    for container in pod["containers"]:
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert "startupProbe" in container
    writable = {m["mountPath"] for c in pod["containers"] for m in c["volumeMounts"] if not m.get("readOnly")}
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in pod["containers"][0]["volumeMounts"]:
        if mount["mountPath"] in writable:
            assert "emptyDir" in volumes[mount["name"]], mount


def test_no_image_is_latest_or_untagged(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    pod = deployment(objects)["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        image = container["image"]
        name, _, tag = image.rpartition(":")
        assert name and "/" in name, image
        assert tag and tag != "latest" and "/" not in tag, image


def test_the_rollout_keeps_every_serving_pod_and_a_drain_can_proceed(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, objects = rendered
    spec = deployment(objects)["spec"]
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    replicas = spec["replicas"]
    assert replicas == (3 if overlay == "production" else 2)
    (pdb,) = of_kind(objects, "PodDisruptionBudget")
    if "maxUnavailable" in pdb["spec"]:
        assert pdb["spec"]["maxUnavailable"] >= 1
    else:
        assert pdb["spec"]["minAvailable"] < replicas
    assert pdb["spec"]["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    constraints = spec["template"]["spec"]["topologySpreadConstraints"]
    assert any(c["topologyKey"] == "kubernetes.io/hostname" for c in constraints)


def test_production_is_http_behind_tls_and_socket_mode_exposes_nothing(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    overlay, objects = rendered
    ingresses = of_kind(objects, "Ingress")
    if overlay == "production":
        (ingress,) = ingresses
        assert ingress["spec"]["tls"][0]["secretName"]
        paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        assert paths == ["/slack/events"]  # alerts come from inside the cluster, not the internet
        assert {"ServiceMonitor", "PrometheusRule"} <= {o["kind"] for o in objects}
    else:
        assert ingresses == []


def test_no_secret_is_rendered_or_committed(rendered: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = rendered
    assert of_kind(objects, "Secret") == []
    referenced = {
        ref["secretRef"]["name"]
        for c in deployment(objects)["spec"]["template"]["spec"]["containers"]
        for ref in c["envFrom"]
        if "secretRef" in ref
    }
    assert "opsbot" in referenced
    token_shape = re.compile(r"xox[abpr]-\d|xapp-\d-|-----BEGIN [A-Z ]*PRIVATE KEY-----")
    for path in (REPO / "deploy").rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
            assert not token_shape.search(text), path
            for doc in _yaml_documents(path, text):
                assert not (doc.get("kind") == "Secret" and (doc.get("data") or doc.get("stringData"))), path


def _yaml_documents(path: Path, text: str) -> list[dict[str, Any]]:
    if path.suffix not in {".yml", ".yaml"}:
        return []
    return [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]


def test_configuration_is_generated_into_hashed_configmaps(
    rendered: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = rendered
    names = {o["metadata"]["name"] for o in of_kind(objects, "ConfigMap")}
    for base in ("opsbot-env", "opsbot-config", "opsbot-runbooks"):
        assert any(re.fullmatch(rf"{base}-[a-z0-9]{{10}}", n) for n in names), (base, names)
    runbooks = next(
        o for o in of_kind(objects, "ConfigMap") if o["metadata"]["name"].startswith("opsbot-runbooks")
    )
    catalogue = sorted(p for p in (REPO / "runbooks").rglob("*") if p.suffix in {".yml", ".sql"})
    assert len(runbooks["data"]) == len(catalogue)


def test_a_changed_policy_rolls_the_pods(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    shutil.copytree(REPO / "deploy", copy / "deploy")
    shutil.copytree(REPO / "runbooks", copy / "runbooks")
    overlay = copy / "deploy" / "kubernetes" / "overlays" / "socket-mode"
    before = deployment(render(overlay))["spec"]["template"]
    policy = copy / "deploy" / "kubernetes" / "base" / "config" / "policy.yml"
    policy.write_text(policy.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    after = deployment(render(overlay))["spec"]["template"]
    assert before != after  # the ConfigMap's hashed name changed, so the pod template did


def test_generated_files_are_current() -> None:
    result = subprocess.run(
        [sys.executable, str(KUBE / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_site_configuration_loads_with_the_bots_own_models() -> None:
    """The files the ConfigMaps carry are the ones `opsbot serve` will read: a bad one would crash-loop."""
    import asyncssh

    from bot.alerts.routes import load_routes
    from bot.approvals.policy import load_policy
    from bot.runbooks.catalogue import load_catalogue
    from bot.targets import load_targets

    config = KUBE / "base" / "config"
    key = asyncssh.generate_private_key("ssh-ed25519").export_private_key().decode()
    environ = {
        "APP_DB_DSN": "postgresql://opsbot@db.internal/app",
        "CACHE_URL": "redis://cache.internal:6379/0",
        "API_BASE_URL": "http://api.internal:8000",
        "API_ADMIN_TOKEN": "t",
        "PROMETHEUS_URL": "http://prometheus.internal:9090",
        "APP_HOST_SSH_KEY": key,
    }
    targets = load_targets(config / "targets.yml", environ=environ)
    assert targets.get("host").transport == "ssh"  # type: ignore[union-attr]
    assert load_policy(config / "policy.yml").reading.defaults["personal"].readers == ["oncall"]
    routes = load_routes(config / "alert-routes.yml", load_catalogue(REPO / "runbooks"))
    assert routes is not None
