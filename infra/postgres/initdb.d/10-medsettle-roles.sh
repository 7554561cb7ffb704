#!/usr/bin/env bash
# Roles and databases of docker-compose's PostgreSQL: run once by the postgres:15 image's entrypoint
# on first initialisation (docker-compose.yml mounts this directory into /docker-entrypoint-initdb.d),
# as the superuser medsettle_admin. The local stack does the same in tools/stack/pg.py (`provision`):
# keep both in step. One login role per service, not a superuser, may create no database or role,
# replicate or bypass row security, member of no role (so no COPY ... FROM PROGRAM, no server
# files), owning its database `medsettle_<service>` alone; `medsettle_operator` may read the audit
# and settlement layers' databases, `medsettle_gateway` the settlement layers'; every database is closed to PUBLIC. The passwords are read by psql itself from the
# secrets volume (`\set` with backquotes: never on a command line), and no statement is logged.
set -euo pipefail
SECRETS=/run/medsettle/server
ROLES="medsettle_enrollment medsettle_intake medsettle_settlement medsettle_catastrophic medsettle_assistance medsettle_audit medsettle_gateway medsettle_operator"
for role in $ROLES; do  # an unreadable file would make psql's \set empty: a role without a password
  [ -r "$SECRETS/$role.password" ] && [ -s "$SECRETS/$role.password" ] || {
    echo "10-medsettle-roles.sh: no password for $role in $SECRETS (docker-compose's pg-secrets container makes them)" >&2
    exit 1
  }
done
{
  echo "SET log_statement = 'none'; SET log_min_error_statement = panic;"
  echo "REVOKE ALL ON DATABASE postgres FROM PUBLIC; REVOKE ALL ON DATABASE template1 FROM PUBLIC;"
  for role in $ROLES; do
    echo "\\set pw \`cat $SECRETS/$role.password\`"
    echo "CREATE ROLE $role LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD :'pw';"
  done
  echo "\\unset pw"
  for service in enrollment intake settlement catastrophic assistance audit gateway; do
    echo "CREATE DATABASE medsettle_$service OWNER medsettle_$service;"
    echo "REVOKE ALL ON DATABASE medsettle_$service FROM PUBLIC;"
  done
  for service in settlement catastrophic assistance audit; do  # runtime.settings.OPERATOR_READS
    echo "GRANT CONNECT ON DATABASE medsettle_$service TO medsettle_operator;"
    echo "\\connect medsettle_$service"
    echo "GRANT USAGE ON SCHEMA public TO medsettle_operator;"
    echo "ALTER DEFAULT PRIVILEGES FOR ROLE medsettle_$service IN SCHEMA public GRANT SELECT ON TABLES TO medsettle_operator;"
  done
  for service in settlement catastrophic assistance; do  # runtime.settings.GATEWAY_READS: pre-settlement reads
    echo "GRANT CONNECT ON DATABASE medsettle_$service TO medsettle_gateway;"
    echo "\\connect medsettle_$service"
    echo "GRANT USAGE ON SCHEMA public TO medsettle_gateway;"
    echo "ALTER DEFAULT PRIVILEGES FOR ROLE medsettle_$service IN SCHEMA public GRANT SELECT ON TABLES TO medsettle_gateway;"
  done
} | psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet --username "$POSTGRES_USER" --dbname postgres
