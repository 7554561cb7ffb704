# One image for every service; the service is chosen by the command:
#   docker run medsettle:local python -m services.<enrollment|settlement|catastrophic|assistance|audit|intake|console>
# Settings come from the environment: KAFKA_BOOTSTRAP_SERVERS, who the service is to the broker
# (KAFKA_SECURITY_PROTOCOL=SASL_SSL, KAFKA_USERNAME, KAFKA_PASSWORD_FILE, KAFKA_CA_FILE: from the secrets
# volume of docker-compose.yml, never baked in), DATABASE_URL (a PostgreSQL server URL without a
# database and without a password; each service logs in as its own role and appends its own database
# medsettle_<service>) and PGPASSFILE (the service's password file, mounted at run time: no password
# is ever in the image).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MEDSETTLE_ROOT=/app

WORKDIR /app
# the operator console's PDF statements: WeasyPrint's text layout (Pango) and CJK fonts
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 \
        fonts-noto-cjk && rm -rf /var/lib/apt/lists/*
# the versions CI tested (hash-checked), then the project itself without resolving anything again
COPY requirements.lock /app/requirements.lock
RUN pip install --require-hashes --no-deps -r /app/requirements.lock
COPY . /app
RUN pip install --no-deps --no-build-isolation /app \
    && useradd --system --uid 10001 --home-dir /app --no-create-home medsettle

USER medsettle
CMD ["medsettle", "--help"]
