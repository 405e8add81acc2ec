"""deploy/compose.yml: parsed strictly against the Compose specification (the compose-spec
wheel's parser), and checked for what the runbook relies on: pinned images, files that
exist, a health-checked start order, migrations before the services, the topics of
CONTRACT.md §8, and settings each service accepts."""

import re
from typing import Any

import compose_spec
import pytest
import yaml

from shared.events.topics import all_topics_with_dlq
from tests.deploy.helpers import (
    ALL_INTERFACES,
    DEPLOY,
    REPO,
    SERVICES,
    SIMULATOR_PORT,
    Service,
    compose_variables,
    dummy_secret,
    image_env,
    interpolate,
    load_settings,
    read_env_file,
)

COMPOSE = DEPLOY / "compose.yml"
TEXT = COMPOSE.read_text()
EXAMPLE = read_env_file(DEPLOY / "env.example")
#: deploy/.env as an operator fills it in from env.example.
FILLED = {k: v or dummy_secret(k) for k, v in EXAMPLE.items()}
#: `docker compose config` of that .env, without docker.
CONFIG: dict[str, Any] = yaml.safe_load(interpolate(TEXT, FILLED))
SERVICES_CFG: dict[str, Any] = CONFIG["services"]
#: An exact third-party version: 4.1.0, 17.6-bookworm, 26.4.0, 3.12.12-slim-trixie.
PINNED_TAG = re.compile(r"^\d+(\.\d+)+(-[a-z0-9.]+)*$")
#: A one-shot's restart policy when it may fail for a moment: a few retries, then give up.
ONE_SHOT_RETRY = re.compile(r"^on-failure:[1-9]$")


def compose_name(service: Service) -> str:
    return service.name.replace("_", "-")


def for_the_parser(text: str) -> str:
    """The compose file as the compose-spec wheel reads it: the specification allows
    `restart: on-failure[:max-retries]`, the wheel's enum only the bare `on-failure`
    (the retry count is checked by test_first_start_waits_for_the_databases)."""
    return re.sub(r"^(\s*restart: on-failure):\d+\b", r"\1", text, flags=re.M)


def test_parses_against_the_compose_specification() -> None:
    parsed = compose_spec.PyOptions(apply_merge=True).from_yaml(
        for_the_parser(interpolate(TEXT, FILLED))
    )
    parsed.validate()  # every network, volume, config and secret a service names is defined
    assert set(parsed.service_names()) == set(SERVICES_CFG)


def test_the_parser_refuses_what_compose_refuses() -> None:
    text = for_the_parser(interpolate(TEXT, FILLED))
    broken = text.replace("service_completed_successfully", "completed", 1)
    with pytest.raises(ValueError, match="unknown variant"):
        compose_spec.PyOptions(apply_merge=True).from_yaml(broken)


def test_every_required_variable_is_in_env_example() -> None:
    for name, default in compose_variables(TEXT).items():
        if default is None:
            assert name in EXAMPLE, f"${{{name}}} has no default and is not in env.example"


def test_env_example_leaves_every_secret_empty() -> None:
    # Nothing in the repository works as a password: the operator generates each one.
    for key, value in EXAMPLE.items():
        if re.search(r"PASSWORD|SECRET|TOKEN|ACCESS_CODE", key):
            assert value == "", f"env.example ships a value for {key}"


def test_images_are_pinned_and_ims_images_are_built_here() -> None:
    for name, svc in SERVICES_CFG.items():
        image = svc["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and tag and tag != "latest", f"{name}: {image} has no exact tag"
        if "build" in svc:
            assert repository.split("/", 1)[1].startswith("ims/"), image
            assert svc["pull_policy"] == "build", f"{name}: would pull {image} from a registry"
            dockerfile = REPO / svc["build"]["dockerfile"]
            assert (DEPLOY / svc["build"]["context"]).resolve() == REPO
            assert dockerfile.is_file(), dockerfile
        elif name.endswith("-migrate"):
            # the service's own image, built once (by the service), never pulled
            assert svc["pull_policy"] == "never", name
            assert "build" in SERVICES_CFG[name.removesuffix("-migrate")], name
        else:
            assert PINNED_TAG.match(tag), f"{name}: {image} is not an exact version"


def test_bind_mounted_files_exist() -> None:
    for name, svc in SERVICES_CFG.items():
        for volume in svc.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} does not exist"
            else:
                assert source in CONFIG["volumes"], f"{name}: volume {source} is not declared"


def test_depends_on_targets_exist_and_wait_for_health() -> None:
    for name, svc in SERVICES_CFG.items():
        for target, condition in svc.get("depends_on", {}).items():
            assert target in SERVICES_CFG, f"{name} depends on unknown {target}"
            assert "profiles" not in SERVICES_CFG[target], f"{name} needs optional {target}"
            wanted = condition["condition"]
            if wanted == "service_healthy":
                # ours carry the image's HEALTHCHECK; the others declare one here
                assert "healthcheck" in SERVICES_CFG[target] or "build" in SERVICES_CFG[target]
            elif wanted == "service_completed_successfully":
                # one-shot: never restarted once it succeeded (at most retried on failure)
                restart = SERVICES_CFG[target].get("restart")
                assert restart == "no" or ONE_SHOT_RETRY.match(restart), f"{target}: {restart}"
            else:
                pytest.fail(f"{name} -> {target}: start order not health-checked ({wanted})")


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_migrations_run_before_the_service(service: Service) -> None:
    name = compose_name(service)
    svc, migrate = SERVICES_CFG[name], SERVICES_CFG[f"{name}-migrate"]
    assert migrate["command"] == ["migrate"]
    assert migrate["image"] == svc["image"]
    assert "build" not in migrate, "the service builds the image; the one-shot reuses it"
    assert migrate["environment"] == svc["environment"]
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert svc["depends_on"][f"{name}-migrate"] == {"condition": "service_completed_successfully"}
    assert svc["depends_on"]["kafka-init"] == {"condition": "service_completed_successfully"}
    assert svc["ports"] == [f"127.0.0.1:{service.port}:{service.port}"]


@pytest.mark.parametrize("service", SERVICES, ids=lambda s: s.name)
def test_environment_is_the_service_own_and_accepted(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    env: dict[str, str] = SERVICES_CFG[compose_name(service)]["environment"]
    for key in env:
        assert key.startswith(service.prefix) or key.startswith("OTEL_"), key
    p = service.prefix
    assert env[f"{p}KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092"
    assert env[f"{p}JWT_JWKS_URL"].startswith("http://sso.localhost:8080/realms/ims/")
    assert env[f"{p}DATABASE_URL"].endswith(f"@postgres:5432/{service.database}")
    # The container's environment: the image's ENV, then compose's.
    image = {k: v for k, v in image_env(service.name).items() if k.startswith(p)}
    settings: Any = load_settings(service, {**image, **env}, monkeypatch)
    assert settings.env == "test"  # refuses dev secrets like prod (env.example explains)
    assert settings.http_host == ALL_INTERFACES and settings.http_port == service.port
    assert settings.kafka_enable_idempotence and settings.json_logs
    assert settings.metrics_token


def test_first_start_waits_for_the_databases() -> None:
    """A first `up` on an empty volume: the image runs init-databases.sh on a server that
    listens on its socket only, and opens TCP when the script is done. The health check
    goes over TCP and names the last database the script creates, so the migrations
    start after every database exists; they also retry a few times, in case."""
    script = (DEPLOY / "compose/postgres/init-databases.sh").read_text()
    last_database = re.findall(r"^create \w+ (\w+) ", script, re.M)[-1]
    test = SERVICES_CFG["postgres"]["healthcheck"]["test"]
    assert test[:2] == ["CMD", "pg_isready"]
    options = dict(zip(test[2::2], test[3::2], strict=True))
    host = options.get("--host", options.get("-h"))
    assert host == "127.0.0.1", f"pg_isready over the socket passes during init: {test}"
    assert options.get("--dbname", options.get("-d")) == last_database
    for service in SERVICES:
        migrate = SERVICES_CFG[f"{compose_name(service)}-migrate"]
        assert ONE_SHOT_RETRY.match(migrate["restart"]), migrate["restart"]
        assert migrate["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_project_name_fixes_the_volume_names_the_runbook_uses() -> None:
    assert CONFIG["name"] == "ims"
    runbook = (DEPLOY / "README.md").read_text()
    named = set(re.findall(r"-v (\w[\w.-]*):/", runbook))
    assert "ims_blobs" in named
    for volume in named:
        assert volume.startswith("ims_") and volume.removeprefix("ims_") in CONFIG["volumes"]


def test_init_script_creates_every_database() -> None:
    script = (DEPLOY / "compose/postgres/init-databases.sh").read_text()
    created = dict(re.findall(r"^create (\w+) (\w+) ", script, re.M))
    for service in SERVICES:
        url = SERVICES_CFG[compose_name(service)]["environment"][f"{service.prefix}DATABASE_URL"]
        role = re.match(r"postgresql\+asyncpg://(\w+):", url)
        assert role and created[role[1]] == service.database
    postgres_env = SERVICES_CFG["postgres"]["environment"]
    for variable in re.findall(r'"\$(\w+_DB_PASSWORD)"', script):
        assert variable in postgres_env


def test_topics_are_the_contract_topics() -> None:
    init = SERVICES_CFG["kafka-init"]
    assert init["environment"]["IMS_TOPICS"].split() == all_topics_with_dlq()
    assert init["depends_on"] == {"kafka": {"condition": "service_healthy"}}
    assert SERVICES_CFG["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert SERVICES_CFG["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_keycloak_imports_the_realm_and_the_simulator_is_optional() -> None:
    keycloak = SERVICES_CFG["keycloak"]
    assert keycloak["command"] == ["start", "--import-realm"]
    assert any(
        v.endswith(":/opt/keycloak/data/import/ims-realm.json:ro") for v in keycloak["volumes"]
    )
    assert "sso.localhost" in keycloak["networks"]["default"]["aliases"]
    sim = SERVICES_CFG["misa-simulator"]
    assert sim["profiles"] == ["misa-sim"]
    assert sim["ports"] == [f"127.0.0.1:{SIMULATOR_PORT}:{SIMULATOR_PORT}"]
    # The simulator serves the tenant misa_sync is configured with (not the dev default).
    misa = SERVICES_CFG["misa-sync"]["environment"]
    assert sim["environment"]["MISA_SIM_ACCESS_CODE"] == misa["MISA_SYNC_MISA_ACCESS_CODE"]
    assert sim["environment"]["MISA_SIM_APP_ID"] == misa["MISA_SYNC_MISA_APP_ID"]
