"""deploy/compose/keycloak/ims-realm.json: the realm `ims` Keycloak imports, with the roles
and demo users of CONTRACT.md §2 and the claims the services read (shared/auth/verify.py:
`sub` = employee id, `name`, `roles`, `sales_unit`; audience `ims`)."""

import json
from typing import Any

import pytest
import yaml

from shared.auth.demo import DEMO_USERS
from shared.auth.principal import ROLES
from shared.ui.oidc import CALLBACK_PATH
from tests.deploy.helpers import DEPLOY, K8S_DIR, SERVICES

REALM: dict[str, Any] = json.loads((DEPLOY / "compose/keycloak/ims-realm.json").read_text())
CLIENTS = {c["clientId"]: c for c in REALM["clients"]}
#: The web UIs and the service whose settings name their client (…_UI_OIDC_CLIENT_ID).
UI_CLIENTS = {"ims-sales-ui": "customer", "ims-cs-ui": "approval"}


def test_realm_and_roles() -> None:
    assert REALM["realm"] == "ims" and REALM["enabled"] is True
    assert {r["name"] for r in REALM["roles"]["realm"]} >= ROLES
    assert REALM["registrationAllowed"] is False


def test_demo_users_are_contract_users() -> None:
    users = {u["username"]: u for u in REALM["users"]}
    assert set(users) == set(DEMO_USERS)
    for username, demo in DEMO_USERS.items():
        user = users[username]
        assert user["id"] == demo.employee_id, "the services read `sub` as the employee id"
        assert f"{user['firstName']} {user['lastName']}" == demo.name  # Keycloak's `name`
        assert set(user["realmRoles"]) == set(demo.roles)
        assert user.get("attributes", {}).get("sales_unit") == (
            [demo.sales_unit] if demo.sales_unit else None
        )
        assert user["email"] and user["emailVerified"] is True  # no profile step at sign-in
        (credential,) = user["credentials"]
        # Substituted by Keycloak from the container's environment at import.
        assert credential == {
            "type": "password",
            "value": "${IMS_DEMO_PASSWORD}",
            "temporary": False,
        }


def test_sales_unit_is_a_declared_admin_managed_attribute() -> None:
    # Keycloak 24+ drops attributes its user profile does not declare.
    (provider,) = REALM["components"]["org.keycloak.userprofile.UserProfileProvider"]
    (config,) = provider["config"]["kc.user.profile.config"]
    attributes = {a["name"]: a for a in json.loads(config)["attributes"]}
    assert {"username", "email", "firstName", "lastName", "sales_unit"} <= set(attributes)
    assert attributes["sales_unit"]["permissions"]["edit"] == ["admin"]  # not by the user


@pytest.mark.parametrize("client_id", sorted(CLIENTS))
def test_every_client_puts_the_claims_the_services_read(client_id: str) -> None:
    mappers = {m["protocolMapper"]: m["config"] for m in CLIENTS[client_id]["protocolMappers"]}
    roles = mappers["oidc-usermodel-realm-role-mapper"]
    assert roles["claim.name"] == "roles" and roles["multivalued"] == "true"
    unit = mappers["oidc-usermodel-attribute-mapper"]
    assert unit["user.attribute"] == unit["claim.name"] == "sales_unit"
    audience = mappers["oidc-audience-mapper"]
    assert audience["included.custom.audience"] == "ims"
    for config in mappers.values():
        assert config["access.token.claim"] == "true"


@pytest.mark.parametrize("client_id", sorted(UI_CLIENTS))
def test_ui_clients_use_pkce_and_the_ui_callback(client_id: str) -> None:
    client = CLIENTS[client_id]
    (service,) = (s for s in SERVICES if s.name == UI_CLIENTS[client_id])
    assert client["publicClient"] is True and client["standardFlowEnabled"] is True
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert f"http://localhost:{service.port}/ui{CALLBACK_PATH}" in client["redirectUris"]
    # The session lasts as long as the token (README, "The CS web UI"): a working day.
    assert int(client["attributes"]["access.token.lifespan"]) >= 8 * 3600
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    assert (
        compose[f"x-{service.name.replace('_', '-')}-env"][f"{service.prefix}UI_OIDC_CLIENT_ID"]
        == client_id
    )
    base = (K8S_DIR / "base/kustomization.yaml").read_text()
    assert f"{service.prefix}UI_OIDC_CLIENT_ID={client_id}" in base


def test_compose_passes_the_demo_password() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yml").read_text())
    assert "IMS_DEMO_PASSWORD" in compose["services"]["keycloak"]["environment"]
