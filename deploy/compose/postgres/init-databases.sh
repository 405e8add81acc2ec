#!/usr/bin/env bash
# First start of the compose stack's PostgreSQL (docker-entrypoint-initdb.d runs this once,
# on an empty data volume): one role and one database per service, and Keycloak's.
# The passwords come from deploy/.env through the postgres service's environment.
set -euo pipefail

create() { # role database password
  psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v role="$1" -v db="$2" -v pw="$3" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'pw';
CREATE DATABASE :"db" OWNER :"role" ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
SQL
}

create customer ims_customer "$CUSTOMER_DB_PASSWORD"
create approval ims_approval "$APPROVAL_DB_PASSWORD"
create misa_sync ims_misa_sync "$MISA_SYNC_DB_PASSWORD"
create reference ims_reference "$REFERENCE_DB_PASSWORD"
create keycloak keycloak "$KEYCLOAK_DB_PASSWORD"
