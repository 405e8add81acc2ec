"""deploy/k8s: every kustomization renders with kubectl's own kustomize (offline), every
object validates against the Kubernetes schemas of kubernetes-validate (strict: unknown
fields refused), the KafkaTopics against deploy/k8s/crds, and the objects fit together
(probes, resources, autoscaling, disruption budgets, migrations, settings)."""

import base64
import functools
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

from shared.events.topics import all_topics_with_dlq
from tests.deploy.helpers import (
    ALL_INTERFACES,
    K8S_DIR,
    SERVICES,
    Service,
    dummy_secret,
    load_settings,
    read_env_file,
    tool,
)

#: The Kubernetes version the manifests are validated for (kubernetes-validate ships it).
KUBERNETES_VERSION = "1.33"
APPS = ("base", "overlays/staging", "overlays/production")
TOPICS = ("topics", "overlays/staging/topics", "overlays/production/topics")
OVERLAYS = ("overlays/staging", "overlays/production")
TOPIC_SCHEMA = json.loads((K8S_DIR / "crds/kafkatopic.schema.json").read_text())
Manifest = dict[str, Any]


@pytest.fixture(scope="module")
def k8s_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deploy/k8s with every overlay's secrets/*.env filled in, as an operator does."""
    tree = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S_DIR, tree, ignore=shutil.ignore_patterns("*.env"))
    for example in tree.glob("overlays/*/secrets/*.env.example"):
        values = {k: v or dummy_secret(k) for k, v in read_env_file(example).items()}
        example.with_suffix("").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return tree


@pytest.fixture(scope="module")
def rendered(k8s_tree: Path) -> dict[str, list[Manifest]]:
    out = {}
    for target in APPS + TOPICS:
        result = subprocess.run(
            [tool("kubectl"), "kustomize", str(k8s_tree / target)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"{target}: {result.stderr}"
        out[target] = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return out


def of_kind(docs: list[Manifest], kind: str) -> dict[str, Manifest]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@functools.cache
def _k8s_validator(kind: str, api_version: str) -> jsonschema.protocols.Validator:
    """kubernetes_validate.validate's own schema lookup (strict), loaded once per kind."""
    version = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= KUBERNETES_VERSION][
        -1
    ]
    folder = f"kubernetes-json-schema/v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv_utils.schema_contents(f"{folder}/{kind.lower()}-{group_version}.json", version)
    definitions = _definitions(folder, version)
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


@functools.cache
def _definitions(folder: str, version: str) -> Any:
    return kv_utils.schema_contents(f"{folder}/_definitions.json", version)


def validate_k8s(doc: Manifest) -> None:
    _k8s_validator(doc["kind"], doc["apiVersion"]).validate(doc)


def test_the_pinned_kubernetes_version_is_shipped() -> None:
    assert any(kv_utils.major_minor(v) == KUBERNETES_VERSION for v in kv_utils.all_versions())


@pytest.mark.parametrize("target", APPS)
def test_objects_validate_against_the_kubernetes_schemas(
    rendered: dict[str, list[Manifest]], target: str
) -> None:
    kinds = set()
    for doc in rendered[target]:
        validate_k8s(doc)
        kinds.add(doc["kind"])
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Job",
        "ConfigMap",
        "ServiceAccount",
    } <= kinds
    if target != "base":
        assert {"Secret", "Namespace"} <= kinds


def test_the_validation_is_strict(rendered: dict[str, list[Manifest]]) -> None:
    deployment = of_kind(rendered["base"], "Deployment")["ims-customer"]
    broken = json.loads(json.dumps(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {"httpGet": {"path": 1}}
    with pytest.raises(jsonschema.ValidationError):
        validate_k8s(broken)
    # the same object through kubernetes_validate's public entry point
    assert kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    typo = json.loads(json.dumps(deployment))
    typo["spec"]["replica"] = 2
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TOPICS)
def test_kafka_topics_are_the_contract_topics(
    rendered: dict[str, list[Manifest]], target: str
) -> None:
    docs = rendered[target]
    assert {d["kind"] for d in docs} == {"KafkaTopic"}
    jsonschema.Draft202012Validator.check_schema(TOPIC_SCHEMA)
    for doc in docs:
        jsonschema.validate(doc, TOPIC_SCHEMA, cls=jsonschema.Draft202012Validator)
        assert doc["metadata"]["name"] == doc["spec"]["topicName"]
        assert doc["spec"]["replicas"] == 3
        config = doc["spec"]["config"]
        assert config["min.insync.replicas"] == 2
        assert isinstance(config["retention.ms"], int)
    assert sorted(d["spec"]["topicName"] for d in docs) == sorted(all_topics_with_dlq())
    if target != "topics":
        assert all(d["metadata"].get("namespace") for d in docs), "applied where Strimzi watches"


def test_the_topic_schema_refuses_what_strimzi_refuses(rendered: dict[str, list[Manifest]]) -> None:
    topic = rendered["topics"][0]
    for path, value in (
        (("spec", "replicas"), 0),
        (("spec", "partitions"), "3"),
        (("spec", "partiton"), 3),
        (("metadata", "name"), "Ims_Topic"),
    ):
        broken = json.loads(json.dumps(topic))
        broken[path[0]][path[1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, TOPIC_SCHEMA, cls=jsonschema.Draft202012Validator)


def containers(doc: Manifest) -> list[Manifest]:
    spec = doc["spec"]["template"]["spec"]
    return list(spec["containers"])


def resolved_env(docs: list[Manifest], container: Manifest) -> dict[str, str]:
    """The container's environment as the kubelet builds it (envFrom, then env)."""
    config_maps = of_kind(docs, "ConfigMap")
    secrets = {
        name: {k: base64.b64decode(v).decode() for k, v in s.get("data", {}).items()}
        for name, s in of_kind(docs, "Secret").items()
    }
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(config_maps[source["configMapRef"]["name"]]["data"])
        else:
            name = source["secretRef"]["name"]
            if name in secrets or not source["secretRef"].get("optional"):
                env.update(secrets[name])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            key_ref, data = ref["configMapKeyRef"], config_maps
            value = data[key_ref["name"]]["data"].get(key_ref["key"])
        else:
            key_ref = ref["secretKeyRef"]
            value = secrets[key_ref["name"]].get(key_ref["key"])
        assert value is not None or key_ref.get("optional"), f"{item['name']}: no such key"
        if value is not None:
            env[item["name"]] = value
    return env


def service_objects(docs: list[Manifest], service: Service) -> Iterator[Manifest]:
    for kind in ("Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        yield of_kind(docs, kind)[service.k8s_name]


@pytest.mark.parametrize("target", APPS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_each_service_is_complete(
    rendered: dict[str, list[Manifest]], target: str, service: Service
) -> None:
    docs = rendered[target]
    deployment, svc, hpa, pdb = service_objects(docs, service)
    pod = deployment["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    (container,) = containers(deployment)
    assert container["args"] == ["serve"]
    assert container["image"].split(":")[0].endswith(service.image)
    (port,) = container["ports"]
    assert port["containerPort"] == service.port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert {"cpu", "memory"} <= set(container["resources"]["requests"])
    assert "memory" in container["resources"]["limits"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    # Service, HPA and PDB point at these pods, and only at them (not the migration's).
    assert svc["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert svc["spec"]["ports"][0]["port"] == service.port
    assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    # The HPA owns the count: a `replicas` here would reset it whenever an apply changed it.
    assert "replicas" not in deployment["spec"], "an HPA-managed Deployment sets no replicas"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    job = of_kind(docs, "Job")[f"{service.k8s_name}-migrate"]
    # Each service runs as its own ServiceAccount, without a Kubernetes API token.
    account = of_kind(docs, "ServiceAccount")[service.k8s_name]
    assert account["automountServiceAccountToken"] is False
    for workload in (deployment, job):
        spec = workload["spec"]["template"]["spec"]
        assert spec["serviceAccountName"] == service.k8s_name
        assert spec["automountServiceAccountToken"] is False
    (migrate,) = containers(job)
    assert migrate["args"] == ["migrate"] and migrate["image"] == container["image"]
    assert migrate["env"] == container["env"] and migrate["envFrom"] == container["envFrom"]
    assert (
        not svc["spec"]["selector"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
    )


@pytest.mark.parametrize("target", OVERLAYS)
@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_environment_names_the_service_prefix_and_is_accepted(
    rendered: dict[str, list[Manifest]],
    target: str,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = rendered[target]
    (container,) = containers(of_kind(docs, "Deployment")[service.k8s_name])
    env = resolved_env(docs, container)
    for key in env:
        assert key.startswith(service.prefix) or key.startswith("OTEL_"), key
    p = service.prefix
    assert env[f"{p}ENV"] == "prod"
    assert env[f"{p}KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert env[f"{p}JWT_JWKS_URL"].startswith("https://")
    assert env[f"{p}METRICS_TOKEN"]
    if service.name in ("customer", "approval"):  # the web UIs sign in through Keycloak
        assert env[f"{p}UI_OIDC_REDIRECT_URL"].startswith("https://")
        assert env[f"{p}UI_OIDC_ISSUER_URL"] == env[f"{p}JWT_ISSUER"]
    settings: Any = load_settings(service, env, monkeypatch)  # prod's checks all pass
    assert settings.env == "prod" and settings.json_logs and settings.kafka_enable_idempotence
    assert settings.http_port == service.port and settings.http_host == ALL_INTERFACES


@pytest.mark.parametrize("target", OVERLAYS)
def test_the_migration_phase_is_self_contained(
    rendered: dict[str, list[Manifest]], target: str
) -> None:
    """deploy/README.md applies `-l 'app.kubernetes.io/component in (config,migration)'`
    first: the namespace, the Jobs and every ConfigMap and Secret they read, and no
    Deployment."""
    phase = [
        d
        for d in rendered[target]
        if d["metadata"].get("labels", {}).get("app.kubernetes.io/component")
        in ("config", "migration")
    ]
    assert {d["kind"] for d in phase} == {
        "Namespace",
        "Job",
        "ConfigMap",
        "Secret",
        "ServiceAccount",
    }
    names = {d["metadata"]["name"] for d in phase}
    for job in (d for d in phase if d["kind"] == "Job"):
        assert job["spec"]["template"]["spec"]["serviceAccountName"] in names
        (container,) = containers(job)
        for source in container["envFrom"]:
            assert next(iter(source.values()))["name"] in names
        for item in container["env"]:
            ref = next(iter(item["valueFrom"].values()))
            assert ref["name"] in names


def test_overlay_sizes(rendered: dict[str, list[Manifest]]) -> None:
    # The sizes are the HPAs' bounds: no Deployment sets `replicas` (the HPA owns it).
    for target in APPS:
        for deployment in of_kind(rendered[target], "Deployment").values():
            assert "replicas" not in deployment["spec"], deployment["metadata"]["name"]
    staging = of_kind(rendered["overlays/staging"], "HorizontalPodAutoscaler")
    assert {(h["spec"]["minReplicas"], h["spec"]["maxReplicas"]) for h in staging.values()} == {
        (1, 2)
    }
    production = of_kind(rendered["overlays/production"], "HorizontalPodAutoscaler")
    assert all(h["spec"]["minReplicas"] >= 2 for h in production.values())
    assert production["ims-customer"]["spec"]["minReplicas"] == 3
    for target in OVERLAYS:
        namespaces = {
            d["metadata"].get("namespace") for d in rendered[target] if d["kind"] != "Namespace"
        }
        (namespace,) = of_kind(rendered[target], "Namespace")
        assert namespaces == {namespace}


def test_production_annotates_the_customer_identity(rendered: dict[str, list[Manifest]]) -> None:
    """customer.env.example: the two S3 keys left empty, the pods use their cloud identity,
    which the production overlay's patch gives ServiceAccount ims-customer."""
    accounts = of_kind(rendered["overlays/production"], "ServiceAccount")
    annotations = accounts["ims-customer"]["metadata"].get("annotations", {})
    assert annotations.get("eks.amazonaws.com/role-arn", "").startswith("arn:aws:iam::")
    example = (K8S_DIR / "overlays/production/secrets/customer.env.example").read_text()
    assert "ServiceAccount" in example and "ims-customer" in example
    for name, account in accounts.items():
        if name != "ims-customer":
            assert not account["metadata"].get("annotations"), name
