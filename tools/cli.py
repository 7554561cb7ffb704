"""The medsettle command line: one command tree (click) behind `./medsettle`, the `medsettle`
console script and `python -m tools` (`python -m tools.stack` is its `stack` group).

Every command's `--help` prints its help and changes nothing: groups do nothing but dispatch, and
each command imports what it runs only once it runs. Errors are one line on stderr, never a
traceback (`MEDSETTLE_DEBUG=1` shows it), and the exit code says what happened (`EXIT_CODES`).
"""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
from collections.abc import Callable, Coroutine, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

EXIT_CODES = """\b
Exit codes:
  0  done
  1  failed, nothing found, or not everything is up (the stack, a service, a file's lines)
  2  usage: an unknown command, option or name, or a bad value
  3  refused: something is in use (a running service, an active consumer group); nothing changed
  130  interrupted"""

SERVICES = ("enrollment", "intake", "settlement", "catastrophic", "assistance", "audit", "gateway", "console")
"""The platform's services, the hospitals' gateway and the operator console (`tools.stack.services.PROCESSES`;
here so that `--help` imports nothing)."""

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _run_async(coroutine: Coroutine[Any, Any, int]) -> int:
    return asyncio.run(coroutine)


class Iso(click.ParamType):  # type: ignore[type-arg]
    """A value in ISO-8601 form: a day (`date`) or a time (`datetime`), parsed by its `fromisoformat`."""

    def __init__(self, kind: type[date], name: str, example: str) -> None:
        self.kind, self.name, self.example = kind, name, example

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> date:
        if isinstance(value, self.kind):
            return value
        try:
            return self.kind.fromisoformat(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not of the form {self.example}", param, ctx)


ISO_DATE = Iso(date, "YYYY-MM-DD", "2026-03-01")
ISO_TIME = Iso(datetime, "ISO_TIME", "2026-03-01T08:00:00+08:00 (without an offset: local time)")


class Group(click.Group):
    """A group that lists its commands in the order they are defined (the order they are used in)."""

    group_class = type  # its subgroups are of this class too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)


# ================================================================================== the root


@click.group(cls=Group, context_settings=CONTEXT, epilog=EXIT_CODES)
@click.version_option(package_name="medsettle", message="%(prog)s %(version)s")
def cli() -> None:
    """medsettle: one-stop settlement (一站式结算) of basic insurance, critical-illness insurance
    and medical assistance, as services over Apache Kafka and PostgreSQL.

    \b
    ./medsettle run     start everything, enroll a population, settle a demo day
    ./medsettle test    the whole test suite against a real Kafka and PostgreSQL

    Connection settings come from KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and PGPASSFILE (the
    password file) if set, else from the local stack (.local/stack.json, .local/secrets/;
    MEDSETTLE_LOCAL=/dir names another stack directory).
    """


@cli.command(epilog=EXIT_CODES)
@click.option("--persons", type=click.IntRange(min=1), default=10_000, show_default=True,
              help="Persons to generate and enroll.")
@click.option("--providers", type=click.IntRange(min=1), default=50, show_default=True,
              help="Designated hospitals to generate and register.")
@click.option("--discharges", type=click.IntRange(min=0), default=2_000, show_default=True,
              help="Discharges of the demo day.")
@click.option("--day", type=ISO_DATE, default="2026-06-15", show_default=True,
              help="The demo day (its year is the coverage year).")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the generator.")
@click.option("--no-demo", is_flag=True, help="Only start everything and enroll the population.")
def run(persons: int, providers: int, discharges: int, day: date, seed: int, no_demo: bool) -> int:
    """Start everything and settle a demo day.

    Starts the local stack (Kafka, PostgreSQL) and every service as a process, generates a
    population and its hospitals (deterministic for the seed) and enrolls them, publishes a day of
    discharges as the hospitals would, waits until every layer has settled them, prints the fund
    totals, what patients pay and the actual compensation ratio, then the stack's status. The
    services keep running (`./medsettle stop`). Everything published has content-derived event
    ids: running it again changes nothing.
    """
    from tools import demo

    return demo.run(persons, providers, discharges, day, seed, no_demo)


@cli.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
             epilog="The exit code is pytest's.")
@click.argument("pytest_args", nargs=-1, type=click.UNPROCESSED)
def test(pytest_args: tuple[str, ...]) -> int:
    """Run the test suite against a real Kafka broker and PostgreSQL.

    With MEDSETTLE_TEST_BACKEND=local (the default) it starts the local stack if it is not
    running and exports its KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and PGPASSFILE (a path: no
    password); with `testcontainers` the tests start containers of the same versions on a Docker
    engine; with `external` they use the broker and server KAFKA_BOOTSTRAP_SERVERS and
    DATABASE_URL name. Then it runs pytest from the checkout with
    PYTEST_ARGS passed through as they are (`./medsettle test tests/unit -q`; pytest's own help:
    `./medsettle test -- --help`).
    """
    from tools import stack
    from tools.stack.common import project_root

    if os.environ.get("MEDSETTLE_TEST_BACKEND", "local") == "local":
        os.environ.update(stack.start())
    os.chdir(project_root())
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "pytest", *pytest_args])


@cli.command(epilog=EXIT_CODES)
def status() -> int:
    """Show the services and the stack (exit 1: something is down).

    Lists each service (running or not), then the stack: Kafka and PostgreSQL, topics with their
    offsets, consumer groups with their lag, databases, registered persons and providers. The exit
    code is 0 only when Kafka, PostgreSQL and every service are running.
    """
    from tools import stack
    from tools.stack import services
    from tools.stack.connection import START_HINT

    running = _services_status(services, SERVICES)
    up = stack.status()["running"]
    if not all(up.values()):
        down = " and ".join(name for name, is_up in (("Kafka", up["kafka"]), ("PostgreSQL", up["postgres"]))
                            if not is_up)
        click.echo(f"the local stack is not running ({down} down): {START_HINT}", err=True)
    elif len(running) < len(SERVICES):
        click.echo("not every service is running: start them with `./medsettle services start`", err=True)
    return 0 if all(up.values()) and len(running) == len(SERVICES) else 1


@cli.command(epilog=EXIT_CODES)
def stop() -> int:
    """Stop every service, then the stack (Kafka and PostgreSQL).

    Data stays; `./medsettle stack reset` wipes it.
    """
    from tools import stack
    from tools.stack import services

    _stop_services(services, SERVICES)
    if not any(stack.stop().values()):
        click.echo("the stack was not running", err=True)
    return 0


def _stop_services(services: Any, names: Sequence[str]) -> None:
    for name in names:
        click.echo(f"{name}: {'stopped' if services.stop(name) else 'was not running'}")


def _services_status(services: Any, names: Sequence[str]) -> dict[str, int]:
    running = {}
    for name in names:
        pid = services.pid_of(name)
        click.echo(f"{name}: {f'running, pid {pid}{_readiness(services, name)}' if pid else 'not running'}")
        if pid:
            running[name] = pid
    return running


def _readiness(services: Any, name: str) -> str:
    """`, ready, http://…` (its health and metrics endpoint) or why it is not ready."""
    from runtime.health import probe

    url = services.endpoint_of(name)
    if url is None:
        return ", no health endpoint yet"
    status, body = probe(f"{url}/readyz", timeout=2.0)
    api = services.api_url_of(name) if name == services.API_SERVICE else None
    if status == 200:
        return f", ready, {url}" + (f", hospitals' API {api}" if api else "")
    failed = ", ".join((body or {}).get("failed") or ["no answer"])
    return f", NOT ready ({failed}), {url}/readyz"


# ============================================================================== contracts


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES)
def contracts() -> None:
    """Documents generated from the contracts (the JSON Schemas: python -m contracts.schema)."""


@contracts.command("asyncapi", epilog=EXIT_CODES)
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if contracts/asyncapi.yaml is stale.")
def contracts_asyncapi(check: bool) -> int:
    """Write contracts/asyncapi.yaml, the AsyncAPI 3.0 document of every topic.

    Generated from the topic registry, the payload models (the envelope wrapping each payload's
    JSON Schema) and the services' subscriptions; CI checks that the committed one is current.
    """
    from tools import asyncapi

    if check:
        if asyncapi.stale():
            click.echo(f"stale: {asyncapi.DOCUMENT.name} (run: ./medsettle contracts asyncapi)", err=True)
            return 1
        click.echo(f"{asyncapi.DOCUMENT.name} is current")
        return 0
    click.echo(f"{'wrote' if asyncapi.write() else 'unchanged:'} {asyncapi.DOCUMENT}")
    return 0


# ============================================================================== services


service_names = click.argument("names", nargs=-1, metavar="[NAME]...", type=click.Choice(SERVICES))


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES)
def services() -> None:
    """Run the platform's services as local processes.

    Each runs as `python -m services.NAME` with the stack's connection settings; its pid is in
    .local/run/NAME.pid, its JSON log in .local/logs/NAME.log and its raw output in
    .local/logs/NAME.out (rotated: 3 × 20 MiB by default); its /healthz, /readyz and /metrics
    endpoint listens on a free port, written to .local/run/NAME.health.json (`status` shows it). NAME is one of enrollment,
    intake, settlement, catastrophic, assistance, audit, gateway, console; no NAME means all of them.
    The gateway's HTTP API for hospitals listens on http://127.0.0.1:8080 (GATEWAY_HOST, GATEWAY_PORT);
    the operator console on http://127.0.0.1:8090 (CONSOLE_PORT): sign in as `operator` with the
    password in .local/secrets/console/operator.password.
    """


@services.command("start", epilog=EXIT_CODES)
@service_names
def services_start(names: tuple[str, ...]) -> int:
    """Start services (all without NAME).

    A running one is left as it is. Exit 1, nothing started, while the stack is not running.
    """
    from tools.stack import services as procs
    from tools.stack.connection import require_database, require_kafka

    require_kafka()
    require_database()
    for name in names or SERVICES:
        click.echo(f"{name}: running, pid {procs.start(name)} (log {procs.log_of(name)})")
        if name == procs.CONSOLE:
            click.echo(f"console: {procs.console_url()} — sign in as operator, password in "
                       f"{procs.console_password_file()}")
        if name == procs.API_SERVICE:
            click.echo(f"{name}: hospitals' HTTP API on {procs.configured_api_url()} (OpenAPI: /docs)")
    return 0


@services.command("stop", epilog=EXIT_CODES)
@service_names
def services_stop(names: tuple[str, ...]) -> int:
    """Stop services (all without NAME).

    SIGTERM, then SIGKILL after 20 s.
    """
    from tools.stack import services as procs

    _stop_services(procs, names or SERVICES)
    return 0


@services.command("status", epilog=EXIT_CODES)
@service_names
def services_status(names: tuple[str, ...]) -> int:
    """Which services run (exit 1: one is not running)."""
    from tools.stack import services as procs

    names = names or SERVICES
    return 0 if len(_services_status(procs, names)) == len(names) else 1


# ================================================================================= stack


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES)
def stack() -> None:
    """The local stack: Kafka and PostgreSQL.

    One Kafka 4.1 broker (KRaft) and one PostgreSQL 15 cluster as plain processes, no Docker: the
    broker on 127.0.0.1:19092, PostgreSQL on 127.0.0.1:15432 (the next free ports if taken),
    everything in the git-ignored .local/ (MEDSETTLE_LOCAL=/dir: there instead).
    `python -m tools.stack` is this group.
    """


@stack.command("start", epilog=EXIT_CODES)
@click.option("--timeout", type=float, default=120.0, show_default=True, help="Seconds to wait for the broker.")
@click.option("--brokers", type=click.Choice(["1", "3"]), default=None,
              help="Kafka brokers: 1 (default) or 3 (KRaft, 3 voters; replication factor 3, min.insync.replicas 2). "
                   "Default: $MEDSETTLE_KAFKA_BROKERS, else what the data was made for, else 1.")
def stack_start(timeout: float, brokers: str | None) -> int:
    """Start Kafka and PostgreSQL, create the topics and databases.

    Starts what is not running (a running stack is left as it is; a stopped node of three is
    started again); the first start downloads the Kafka jars with Maven. Prints the connection settings.
    """
    from tools import stack as local

    for key, value in local.start(timeout=timeout, brokers=int(brokers) if brokers else None).items():
        click.echo(f"{key}={value}", err=True)
    return 0


@stack.command("stop", epilog=EXIT_CODES)
def stack_stop() -> int:
    """Stop PostgreSQL and the broker (not the services).

    PostgreSQL with a fast shutdown, the broker with SIGTERM (SIGKILL after 30 s). Services are
    left alone: `./medsettle stop` stops them too.
    """
    from tools import stack as local

    if not any(local.stop().values()):
        click.echo("nothing was running", err=True)
    return 0


@stack.command("status", epilog=EXIT_CODES)
@click.option("--check", is_flag=True, help="Print nothing; only the exit code.")
def stack_status(check: bool) -> int:
    """Show Kafka and PostgreSQL (exit 1: one is down).

    The broker, its topics (partitions, offsets) and consumer groups (lag); PostgreSQL, its
    databases, registered persons and providers.
    """
    from tools import stack as local

    running = local.is_running() if check else local.status()["running"]
    return 0 if all(running.values()) else 1


@stack.command("reset", epilog=EXIT_CODES)
@click.option("--stop-services", is_flag=True, help="Stop the services of `./medsettle services` first.")
def stack_reset(stop_services: bool) -> int:
    """Stop the stack and wipe its data (refused while in use).

    Wipes the Kafka data and the PostgreSQL cluster (the jars stay). Refused (exit 3, nothing
    wiped) while anything still uses the stack, which it names: a service started by
    `./medsettle services` or `run`, or a consumer group `medsettle.…` or `<prefix>medsettle.…`
    with active members (a service run by hand, a test, a benchmark).
    """
    from tools import stack as local

    local.reset(stop_services=stop_services)
    return 0


@stack.command("env", epilog=EXIT_CODES)
def stack_env() -> int:
    """Print `export` lines for KAFKA_BOOTSTRAP_SERVERS, DATABASE_URL and PGPASSFILE.

    DATABASE_URL names the stack's admin role and no password; PGPASSFILE is the path of the
    admin's password file (.local/secrets/postgres/pgpass, 0600). No password is printed.

    \b
    eval "$(./medsettle stack env)"
    """
    from tools import stack as local

    for key, value in local.connection_settings().items():
        click.echo(f"export {key}={shlex.quote(value)}")
    return 0


@stack.command("topics", epilog=EXIT_CODES)
@click.option("--wait", type=float, default=90.0, show_default=True, help="Seconds to wait for the broker.")
def stack_topics(wait: float) -> int:
    """Create the registry's topics on $KAFKA_BOOTSTRAP_SERVERS.

    Only the topics of contracts.topics (and their dead-letter topics); idempotent. As the user
    of KAFKA_USERNAME (and KAFKA_PASSWORD or KAFKA_PASSWORD_FILE), else the local stack's admin.
    """
    from tools import stack as local

    for name, state in local.create_topics(wait=wait).items():
        click.echo(f"{name}: {state}")
    return 0


secrets_dir_option = click.option("--secrets-dir", type=click.Path(file_okay=False, path_type=Path),
                                  default="/secrets", show_default=True, help="The secrets volume.")


@stack.command("compose-secrets", epilog=EXIT_CODES)
@secrets_dir_option
def stack_compose_secrets(secrets_dir: Path) -> int:
    """docker-compose: generate the CA, certificates and passwords, render the broker's configuration.

    The `secrets` init container of docker-compose.yml runs it into the secrets volume before the
    broker starts (tools/stack/compose.py); idempotent. Prints what it generated, never a secret.
    """
    from tools.stack import compose
    from tools.stack.common import project_root

    made = compose.prepare(secrets_dir, project_root() / "infra" / "kafka" / "server.properties.template")
    click.echo(f"generated in {secrets_dir}: {', '.join(made) or 'nothing (all there)'}")
    return 0


@stack.command("compose-setup", epilog=EXIT_CODES)
@secrets_dir_option
@click.option("--bootstrap", default="kafka:9092", show_default=True, help="The CLIENT listener (SASL_SSL).")
@click.option("--internal", default="kafka:9094", show_default=True, help="The INTERNAL listener (mutual TLS).")
def stack_compose_setup(secrets_dir: Path, bootstrap: str, internal: str) -> int:
    """docker-compose: the principals' credentials and ACLs, then the registry's topics.

    The `kafka-setup` init container of docker-compose.yml runs it once the broker is healthy:
    as the broker (mutual TLS) it sets the SCRAM credentials from the secrets volume, then as admin
    it grants the services' ACLs and creates the topics; idempotent.
    """
    from tools import stack as local
    from tools.stack.kafka import ensure_topics
    from tools.stack.secrets import StackSecrets, mutual_tls_context

    secrets = StackSecrets.at(secrets_dir)

    async def go() -> dict[str, str]:
        internal_options = {"bootstrap_servers": internal, "security_protocol": "SSL",
                            "ssl_context": mutual_tls_context(secrets)}
        return await ensure_topics(await local.secure(secrets, bootstrap, internal_options))

    for name, state in asyncio.run(go()).items():
        click.echo(f"{name}: {state}")
    return 0


# ========================================================================= the hospitals


prefix_option = click.option("--prefix", envvar="TOPIC_PREFIX", default="", show_envvar=True,
                             help="Topic and consumer-group prefix (a namespace).")
credentials_option = click.option(
    "--credentials", envvar="MEDSETTLE_CREDENTIALS", show_envvar=True, metavar="FILE",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A hospital's credentials (from `operator hospital-credentials`): act as that hospital, on its own "
         "topics hospital.ID.requests / hospital.ID.statements. Without: as the operator (admin).")


def _hospital_credentials(path: Path | None, bootstrap: str | None) -> Any:
    """The hospital's credentials in `path` (None: none given), at `bootstrap` if given."""
    if path is None:
        return None
    from tools.hospital.credentials import CredentialsError, HospitalCredentials

    try:
        return HospitalCredentials.load(path).at(bootstrap)
    except CredentialsError as exc:
        raise click.BadParameter(str(exc), param_hint="--credentials") from None


def _kafka(hospital: Any, bootstrap: str | None) -> Any:
    """Who the hospital client is to the broker: the hospital (its credentials), else the operator
    (the environment's user or the local admin), at `bootstrap` if given; once the broker answers."""
    from dataclasses import replace

    from tools.stack.connection import kafka_access, require_kafka

    if hospital is not None:
        return hospital.access if bootstrap else require_kafka(access=hospital.access)
    if bootstrap:  # as before security: an address given is used as it is
        return replace(kafka_access(), bootstrap_servers=bootstrap)
    return require_kafka()


def _publish_command(kind: str, summary: str, line: str) -> click.Command:
    @click.command(kind, epilog=EXIT_CODES, help=f"""{summary}

    {line} Every line of every FILE is validated before anything is sent, as a consumer will
    decode it; a bad line is reported with its file, line number and field, and then nothing is
    published (exit 1) unless --skip-invalid. Event ids derive from the content: publishing a file
    again changes nothing (use --resend to send the same requests as new events).""")
    @click.argument("files", nargs=-1, required=True, metavar="FILE...",
                    type=click.Path(exists=True, dir_okay=False, path_type=Path))
    @click.option("--bootstrap", metavar="SERVERS", help="Kafka bootstrap servers (default: the environment or "
                                                          "the local stack).")
    @prefix_option
    @click.option("--skip-invalid", is_flag=True, help="Publish the valid lines even if some are bad.")
    @click.option("--no-progress", is_flag=True, help="No progress bar.")
    @click.option("--resend", is_flag=True, help="Send as new events (fresh event ids): to settle a reversed claim "
                                                "again, or to reverse a claim again after that.")
    @click.option("--direct", is_flag=True, help="Operators: put hospitals' requests on claims.discharges itself "
                                                "(a back-fill), not on each hospital's requests topic.")
    @credentials_option
    def command(files: tuple[Path, ...], bootstrap: str | None, prefix: str, skip_invalid: bool,
                no_progress: bool, resend: bool, direct: bool, credentials: Path | None) -> int:
        from tools.hospital.publish import publish_files

        hospital = _hospital_credentials(credentials, bootstrap)
        if hospital is not None and kind == "commands":
            raise click.UsageError("enrollment commands are published by operators, not with a hospital's credentials")
        if hospital is not None and direct:
            raise click.UsageError("--direct is for operators: a hospital writes only its own requests topic")
        return publish_files(kind, files, lambda: _kafka(hospital, bootstrap), prefix=prefix,  # type: ignore[arg-type]
                             skip_invalid=skip_invalid, progress=not no_progress, resend=resend,
                             to_discharges=direct, hospital=hospital.hospital_id if hospital else None)

    return command


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES)
def publish() -> None:
    """Publish discharges, corrections, reversals or enrollment commands from JSONL files.

    Hospitals publish discharges, corrections and reversals; operators publish enrollment commands.
    """


publish.add_command(_publish_command(
    "discharges", "Publish discharges, one DischargeRecorded payload a line.",
    "Keyed by person id, on the hospital's requests topic hospital.HOSPITAL_ID.requests."))
publish.add_command(_publish_command(
    "corrections", "Publish corrected discharges (重新结算), one DischargeCorrected payload a line.",
    "A correction is the claim's whole new bill under the same hospital_claim_id, with a correction_reason; "
    "the person and the insurance year cannot change. Keyed by person id, on the hospital's requests topic "
    "hospital.HOSPITAL_ID.requests."))
publish.add_command(_publish_command(
    "reversals", "Publish reversals (冲正), one ReversalRequested payload a line.",
    "A reversal names the claim (hospital_id, hospital_claim_id), the person_id and a reason; the claim nets "
    "to zero. Keyed by person id, on the hospital's requests topic hospital.HOSPITAL_ID.requests."))
publish.add_command(_publish_command(
    "commands", "Publish enrollment commands, one a line.",
    "Each line is {\"event_type\": ..., \"payload\": {...}}, the command one of EnrollPerson, "
    "ChangeCategories, SuspendPerson, ResumePerson, RecordDeath or RegisterProvider, keyed by person or "
    "provider id, on enrollment.commands."))


@cli.command(epilog=EXIT_CODES)
@click.option("--hospital", metavar="ID", help="Only this hospital's statements (and remember what was shown).")
@click.option("--from-beginning", is_flag=True, help="Start at the oldest statement, not at new ones.")
@click.option("--exit-when-idle", type=click.FloatRange(min=0), metavar="SECONDS",
              help="Stop after this long without a new statement (default: follow until Ctrl-C).")
@click.option("--bootstrap", metavar="SERVERS", help="Kafka bootstrap servers (default: the environment or the "
                                                      "local stack).")
@prefix_option
@credentials_option
def statements(hospital: str | None, from_beginning: bool, exit_when_idle: float | None, bootstrap: str | None,
               prefix: str, credentials: Path | None) -> int:
    """Follow settlement statements (一站式结算单) as a table.

    Statements, adjustments (补退: signed differences, with their cause) and reversals (冲正) from
    claims.statements, and the refusals of corrections and reversals from claims.refusals. With
    --hospital, only that hospital's, and its consumer group medsettle.hospital.ID remembers what was
    shown, so a restart continues where it stopped; a statement re-sent with the same event id is
    shown once. Patients' identity numbers are masked. With --credentials, as that hospital: its
    statements and refusals from hospital.ID.statements, in its group hospital.ID.statements.
    """
    from tools.hospital.statements import follow

    own = _hospital_credentials(credentials, bootstrap)
    if own is not None:
        if hospital not in (None, own.hospital_id):
            raise click.BadParameter(f"these credentials are hospital {own.hospital_id}'s", param_hint="--hospital")
        hospital = own.hospital_id
    try:
        shown, refused = asyncio.run(follow(hospital, _kafka(own, bootstrap), from_beginning=from_beginning,
                                            idle_exit=exit_when_idle, prefix=prefix, as_hospital=own is not None))
    except KeyboardInterrupt:
        return 0
    click.echo(f"{shown} statement(s), {refused} refusal(s)")
    return 0


# ============================================================================ generator


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES)
def generate() -> None:
    """Deterministic synthetic data: a population and its discharges.

    The same arguments always give the same bytes. The sources of the numbers are in
    tools/generate/population.py and tools/generate/discharges.py.
    """


@generate.command("population", epilog=EXIT_CODES)
@click.option("--persons", type=int, default=10_000, show_default=True)
@click.option("--providers", type=int, default=50, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--year", type=int, default=2026, show_default=True, help="Coverage year.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Output directory.")
def generate_population(persons: int, providers: int, seed: int, year: int, out: Path) -> int:
    """Persons and hospitals: enrollment commands.

    Writes OUT/providers.jsonl and OUT/persons.jsonl, one enrollment command a line. Category
    shares are those of the seeds' county (F000), exact to one person.
    """
    from tools.generate import population_files

    click.echo(_usage_on_value_error(lambda: population_files(out, persons, providers, seed, year)), err=True)
    return 0


@generate.command("discharges", epilog=EXIT_CODES)
@click.option("--count", type=int, default=2_000, show_default=True)
@click.option("--seed", type=int, default=7, show_default=True)
@click.option("--year", type=int, default=2026, show_default=True)
@click.option("--population", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True,
              help="Directory written by `generate population`.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output .jsonl file.")
@click.option("--day", type=ISO_DATE, help="All discharges on this day (in --year).")
@click.option("--ineligible-share", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of discharges for unknown persons or persons whose benefits have not started.")
def generate_discharges(count: int, seed: int, year: int, population: Path, out: Path, day: date | None,
                        ineligible_share: float) -> int:
    """A population's discharges: DischargeRecorded payloads.

    Writes OUT, one DischargeRecorded payload a line, sorted by discharge date.
    """
    from tools.generate import discharges_file

    click.echo(_usage_on_value_error(lambda: discharges_file(out, population, count, seed, year, day,
                                                             ineligible_share)), err=True)
    return 0


def _usage_on_value_error(step: Callable[[], str]) -> str:
    """A ValueError of the generator is about the arguments: a usage error (exit 2)."""
    try:
        return step()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None


# ============================================================================= operator


audit_db_option = click.option("--audit-db", envvar="AUDIT_DATABASE", default="medsettle_audit", show_default=True,
                               show_envvar=True, help="The audit service's database.")
show_identity_option = click.option("--show-identity", is_flag=True,
                                    help="Show identity numbers in full (masked by default: 110101********1234).")


@cli.group(context_settings=CONTEXT, epilog=EXIT_CODES)
def operator() -> None:
    """Trace a claim, KPIs, alerts, reconcile, what-if, replay, dead letters.

    The operator's tools (经办/监管).
    trace, kpis, alerts and reconcile read the audit service's database (--audit-db, env
    AUDIT_DATABASE) and what-if the settlement layers' databases, as the read-only role
    medsettle_operator; replay and dlt talk to the broker. --prefix (env TOPIC_PREFIX) names a
    namespace: its topics, consumer groups and (reconcile, what-if) ledger databases. Identity
    numbers are masked unless --show-identity.
    """


@operator.command("trace", epilog=EXIT_CODES)
@click.argument("claim_id")
@audit_db_option
@show_identity_option
def operator_trace(claim_id: str, audit_db: str, show_identity: bool) -> int:
    """Every event of a claim, in order (exit 1: none).

    The claim's events across the topics as the audit stored them, with its alerts.
    """
    from tools.operator import commands

    return _run_async(commands.trace(audit_db, claim_id, show_identity))


@operator.command("kpis", epilog=EXIT_CODES)
@click.option("--from", "date_from", type=ISO_DATE, required=True, help="First discharge date.")
@click.option("--to", "date_to", type=ISO_DATE, required=True, help="Last discharge date.")
@click.option("--region", help="Policy profile id, e.g. demo-county.")
@click.option("--pool", help="Provider pool code.")
@audit_db_option
def operator_kpis(date_from: date, date_to: date, region: str | None, pool: str | None, audit_db: str) -> int:
    """KPIs (经办指标) for a period of discharge dates."""
    from tools.operator import commands

    return _run_async(commands.kpis(audit_db, date_from, date_to, region, pool))


@operator.command("alerts", epilog=EXIT_CODES)
@click.option("--rule", help="Only this rule's alerts, e.g. split_admission.")
@click.option("--claim", metavar="CLAIM_ID", help="Only this claim's alerts.")
@click.option("--limit", type=click.IntRange(min=1), default=1000, show_default=True)
@audit_db_option
@show_identity_option
def operator_alerts(rule: str | None, claim: str | None, limit: int, audit_db: str, show_identity: bool) -> int:
    """Fund-supervision and reconciliation alerts (exit 1: none)."""
    from tools.operator import commands

    return _run_async(commands.alerts(audit_db, rule, claim, limit, show_identity))


@operator.command("reconcile", epilog=EXIT_CODES)
@prefix_option
@audit_db_option
@show_identity_option
def operator_reconcile(prefix: str, audit_db: str, show_identity: bool) -> int:
    """Statements against ledgers, per layer (对账); read only."""
    from tools.operator import commands

    return _run_async(commands.reconcile(audit_db, prefix, show_identity))


class Money(click.ParamType):  # type: ignore[type-arg]
    """A decimal number (money in yuan or a ratio as a fraction), read exactly."""

    name = "DECIMAL"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from decimal import Decimal, InvalidOperation

        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.fail(f"{value!r} is not a decimal number", param, ctx)
        if not number.is_finite():
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


@operator.command("what-if", epilog=EXIT_CODES)
@click.argument("profile")
@click.option("--year", type=click.IntRange(2000, 2099), required=True,
              help="The insurance year to re-price (every person-year of it, in its original order).")
@click.option("--overlay", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Operator inputs for the candidate: a YAML in the profile's shape, merged into it.")
@click.option("--set", "sets", multiple=True, metavar="PATH=VALUE",
              help="An operator input or a change, e.g. --set catastrophic.threshold=8000.00 (repeatable).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, writable=True, path_type=Path), metavar="FILE",
              help="Also write the report as CSV (section, group, measure, actual, candidate, difference).")
@click.option("--top", type=click.IntRange(0, 1000), default=20, show_default=True,
              help="How many of the claims that change most to list.")
@click.option("--solve", "solve_for", metavar="PARAM",
              help="Solve for this money amount or ratio of the candidate, e.g. catastrophic.threshold.")
@click.option("--target", metavar="RATIO=VALUE",
              help="With --solve: the ratio to reach, compensation, in_policy or catastrophic, e.g. catastrophic=0.50.")
@click.option("--between", nargs=2, type=Money(), metavar="LOW HIGH",
              help="With --solve: the range searched (default 0 to 4 times the current amount, at least 10,000 "
                   "yuan; 0 to 1 for a ratio).")
@click.option("--show-identity", is_flag=True, help="Show person ids (identity numbers) in clear.")
@click.option("--workers", type=click.IntRange(0, 64), default=None,
              help="Processes pricing the person-years [default: 2, or the cores if fewer; 0 or 1: this one].")
@prefix_option
def operator_what_if(profile: str, year: int, overlay: str | None, sets: tuple[str, ...], csv_path: Path | None,
                     top: int, solve_for: str | None, target: str | None, between: tuple[Any, Any] | None,
                     show_identity: bool, workers: int | None, prefix: str) -> int:
    """What a candidate profile would have paid (政策测算), in a sandbox.

    PROFILE is a shipped profile id (e.g. demo-county) or a YAML file, validated like any profile
    (with --overlay and --set applied). Every claim of the insurance year is priced again under it
    in its original order per person-year with the layers' pure calculators, reading settlement's,
    critical illness's and assistance's databases in read-only snapshots: no topic, accumulator,
    ledger or statement is touched and the live services keep running. Prints, actual against
    candidate: each fund's spending, patients' out-of-pocket, the compensation and in-policy ratios
    (overall, by hospital level, by assistance category), persons reaching each cap and threshold,
    the out-of-pocket burden, the claims that change most, the wall time and rate.

    With --solve PARAM --target RATIO=VALUE, bisects PARAM (money to the whole yuan, a ratio to
    0.001) for the value at which RATIO reaches VALUE, re-pricing only the layers PARAM affects;
    prints each iteration, the answer and the report at it. Exit 1: no claim in the year, or the
    target is not reached within the range.
    """
    from tools.operator import whatif_view
    from tools.operator.whatif import DEFAULT_WORKERS

    return _run_async(whatif_view.command(profile, year, overlay, sets, csv_path, top, solve_for, target, between,
                                          show_identity, prefix, DEFAULT_WORKERS if workers is None else workers))


REPLAYED = ("enrollment", "settlement", "catastrophic", "assistance", "audit")
"""The services with consumer groups (`tools.operator.replay.SERVICE_INPUTS`)."""


@operator.command("replay", epilog=EXIT_CODES)
@click.argument("service", type=click.Choice(REPLAYED))
@click.option("--to-earliest", is_flag=True, help="Back to the beginning of every input.")
@click.option("--to-datetime", type=ISO_TIME, help="To the first record at or after this time, e.g. "
                                                    "2026-03-01T08:00:00+08:00 (without an offset: local time).")
@click.option("--to-offset", type=click.IntRange(min=0), metavar="N",
              help="The same offset on every partition (with --partition: on that one, exactly).")
@click.option("--topic", help="Only the group of this input topic (needed with --partition for the audit).")
@click.option("--partition", type=click.IntRange(min=0), metavar="P",
              help="Move only this partition (needs --to-offset; past a poison record: its offset + 1).")
@click.option("--dry-run", is_flag=True, help="Show what would be reprocessed; change nothing.")
@prefix_option
def operator_replay(service: str, to_earliest: bool, to_datetime: datetime | None, to_offset: int | None,
                    topic: str | None, partition: int | None, dry_run: bool, prefix: str) -> int:
    """Reset a service's consumer groups (stop it first).

    The service reprocesses its input when it starts again. Resets medsettle.SERVICE.TOPIC to the
    earliest offset, a point in time or an offset; with --partition, moves that one partition of
    one group to an exact offset and leaves its other partitions where they are. Refused (exit 3)
    while a group has active members. Every service dedupes by natural key: a replay re-applies
    and re-publishes nothing.
    """
    from tools.operator import commands

    if sum((to_earliest, to_datetime is not None, to_offset is not None)) != 1:
        raise click.UsageError("give exactly one of --to-earliest, --to-datetime, --to-offset")
    target = commands.target_of(to_earliest, to_datetime, to_offset)
    return _run_async(commands.replay(prefix, service, target, topic, partition, dry_run))


@operator.group("dlt", context_settings=CONTEXT, epilog=EXIT_CODES)
def operator_dlt() -> None:
    """Dead letters (死信): list, redrive.

    Redrive a dead letter once its cause is fixed. TOPIC is an input topic (claims.discharges)
    or its dead-letter topic (claims.discharges.dlt).
    """


def _topic_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from contracts.topics import DLT_SUFFIX, TOPICS

    if value is None:
        return None
    known = [t.name for t in TOPICS]
    if value.removesuffix(DLT_SUFFIX) not in known:
        raise click.BadParameter(f"{value!r} is not a topic of the registry (one of {', '.join(known)})")
    return value


@operator_dlt.command("list", epilog=EXIT_CODES)
@click.argument("topic", required=False, callback=_topic_name)
@prefix_option
@show_identity_option
def operator_dlt_list(topic: str | None, prefix: str, show_identity: bool) -> int:
    """Dead letters with their reason and origin (exit 1: none).

    Every dead-letter topic without TOPIC.
    """
    from tools.operator import commands

    return _run_async(commands.dlt_list(prefix, topic, show_identity))


@operator_dlt.command("redrive", epilog=EXIT_CODES)
@click.argument("topic", callback=_topic_name)
@click.option("--offset", type=click.IntRange(min=0), help="The dead letter at this offset.")
@click.option("--all", "every", is_flag=True, help="Every dead letter not redriven yet.")
@click.option("--dry-run", is_flag=True, help="Show what would be redriven; send nothing.")
@prefix_option
def operator_dlt_redrive(topic: str, offset: int | None, every: bool, dry_run: bool, prefix: str) -> int:
    """Republish dead letters to their original topic.

    Each original record is sent once. What was redriven is remembered (group
    medsettle.operator.redrive): a second redrive sends nothing. A truncated letter is not
    redriven; its original's topic, partition and offset are named.
    """
    from tools.operator import commands

    if (offset is None) == (not every):
        raise click.UsageError("give exactly one of --offset N, --all")
    return _run_async(commands.dlt_redrive(prefix, topic, offset, dry_run))


@operator.command("hospital-credentials", epilog=EXIT_CODES)
@click.argument("hospital_id")
@prefix_option
def operator_hospital_credentials(hospital_id: str, prefix: str) -> int:
    """Issue a hospital's credentials (again: rotate them); shown once.

    Creates the SCRAM user hospital-HOSPITAL_ID with a new generated password (the broker keeps
    only its hash), the hospital's topics hospital.HOSPITAL_ID.requests and
    hospital.HOSPITAL_ID.statements, and its rights: write its requests, read its statements and
    its own consumer groups (hospital.HOSPITAL_ID.*), nothing else. Prints the credentials as JSON
    on stdout, once — save them as the file the hospital gives to `--credentials`:

    \b
    ./medsettle operator hospital-credentials H001 > H001.credentials.json
    chmod 600 H001.credentials.json
    """
    import json

    from tools.operator import hospitals
    from tools.stack.connection import require_kafka

    try:
        issued = asyncio.run(hospitals.issue(require_kafka(), hospital_id, prefix))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="HOSPITAL_ID") from None
    click.echo(json.dumps(issued.to_json(), indent=2))
    click.echo(f"issued credentials of {issued.access.username}: shown once, keep them readable by the hospital "
               "only", err=True)
    return 0


# ===================================================================== running the tree


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _failure(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the one-line message of an error the user can act on (None: not one)."""
    from tools.stack.common import StackError

    refused: tuple[type[BaseException], ...] = ()
    try:
        from tools.operator.replay import ReplayRefused
        from tools.stack import ResetRefused

        refused = (ResetRefused, ReplayRefused)
    except ImportError:  # pragma: no cover - a broken install: report the error itself
        pass
    if isinstance(exc, refused):
        return 3, str(exc)
    if isinstance(exc, StackError):
        return 1, str(exc)
    from runtime.kafka_access import KafkaAccessError

    if isinstance(exc, KafkaAccessError):
        return 1, str(exc)
    if isinstance(exc, OSError) and exc.filename is not None:
        return 1, f"{exc.filename}: {exc.strerror or exc}"
    if isinstance(exc, (OSError, TimeoutError)):
        return 1, f"{type(exc).__name__}: {exc}"
    module = type(exc).__module__.split(".")[0]
    if module in ("asyncpg", "aiokafka"):
        return 1, f"{type(exc).__name__}: {exc}"
    return None


def _invoke(command: click.Command, args: Sequence[str] | None, prog_name: str) -> int:
    """Run `command` with `args`; every outcome becomes an exit code, every error one line on stderr."""
    try:
        result = command.main(list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False)
    except click.exceptions.NoArgsIsHelpError as exc:  # a group without its command: its help
        click.echo(exc.format_message(), err=True)
        return exc.exit_code
    except click.UsageError as exc:
        where = exc.ctx.command_path if exc.ctx is not None else prog_name
        click.echo(f"{where}: error: {_one_line(exc.format_message())} (see '{where} --help')", err=True)
        return exc.exit_code
    except click.ClickException as exc:
        click.echo(f"{prog_name}: error: {_one_line(exc.format_message())}", err=True)
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        return 130
    except Exception as exc:
        if os.environ.get("MEDSETTLE_DEBUG"):
            raise
        known = _failure(exc)
        code, message = known or (1, f"{type(exc).__name__}: {exc} (a bug? MEDSETTLE_DEBUG=1 shows the traceback)")
        click.echo(f"{prog_name}: error: {_one_line(message)}", err=True)
        return code
    return result if isinstance(result, int) else 0


def main(argv: Sequence[str] | None = None, prog_name: str = "medsettle") -> int:
    """The entry point of `./medsettle`, the `medsettle` console script and `python -m tools`."""
    return _invoke(cli, argv, prog_name)


def run_group(name: str, argv: Sequence[str], prog_name: str) -> int:
    """One group of the tree on its own (`python -m tools.stack` is the `stack` group)."""
    group = cli.commands[name]
    return _invoke(group, argv, prog_name)


def commands(group: click.Group = cli, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group of the tree, as the words that name it (the root is `()`)."""
    found = [path]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found
