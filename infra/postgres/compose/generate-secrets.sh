#!/usr/bin/env bash
# docker-compose's `pg-secrets` init container (image postgres:15, as root): generates the PostgreSQL
# passwords once into the named volume `pg-secrets` (mounted at /secrets) and leaves each where
# only its user can read it. Nothing is printed; running it again keeps what exists.
#   /secrets/server/<role>.password   0600, uid 999 (the postgres image's server): the admin's and
#                                     every role's password, for initdb.d/10-medsettle-roles.sh
#   /secrets/<service>/pgpass         0600, the service's own uid (docker-compose.yml: 10011 ...
#                                     10017): a password file with that service's role alone
#   /secrets/console/pgpass           0600, uid 10018: the operator role's (the operator console)
set -euo pipefail
umask 077
cd /secrets
mkdir -p server
password() { head -c 48 /dev/urandom | base64 -w0 | tr -d '+/='; }
for role in medsettle_admin medsettle_enrollment medsettle_intake medsettle_settlement medsettle_catastrophic \
            medsettle_assistance medsettle_audit medsettle_gateway medsettle_operator; do
  [ -s "server/$role.password" ] || password > "server/$role.password"
done
chown -R 999:999 server && chmod 700 server && chmod 600 server/*
uid=10011
for service in enrollment settlement catastrophic assistance audit intake gateway; do
  mkdir -p "$service"
  printf 'postgres:*:*:medsettle_%s:%s\n' "$service" "$(cat "server/medsettle_$service.password")" > "$service/pgpass"
  chown -R "$uid:$uid" "$service" && chmod 700 "$service" && chmod 600 "$service/pgpass"
  uid=$((uid + 1))
done
# the operator console (uid 10018) reads as the read-only operator role
mkdir -p console
printf 'postgres:*:*:medsettle_operator:%s\n' "$(cat server/medsettle_operator.password)" > console/pgpass
chown -R 10018:10018 console && chmod 700 console && chmod 600 console/pgpass
chmod 711 /secrets  # each container may enter, and reads only the directory it owns
