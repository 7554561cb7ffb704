-- One database per service (docs/architecture.md, "State"). Run by the postgres:15 image's
-- entrypoint on first initialisation (docker-compose mounts this directory into
-- /docker-entrypoint-initdb.d). The local stack (tools.stack) creates the same list itself
-- (tools.stack.common.SERVICE_DATABASES); keep both in step.
CREATE DATABASE medsettle_enrollment;
CREATE DATABASE medsettle_intake;
CREATE DATABASE medsettle_settlement;
CREATE DATABASE medsettle_catastrophic;
CREATE DATABASE medsettle_assistance;
CREATE DATABASE medsettle_audit;
