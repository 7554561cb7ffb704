"""The console's pages (Starlette + Jinja2, rendered on the server). Every page but the sign-in
and `/healthz` needs a signed-in operator (else a redirect to `/login`); every POST that changes
something carries the session's CSRF token. Identity numbers are masked unless the operator asks
(`?show_identity=1`). A bad value in a form or a query is a 400 naming it."""

from __future__ import annotations

import asyncio
import io
import secrets
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal
from functools import wraps
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import asyncpg
from aiokafka.errors import KafkaError
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from contracts.identity import mask_identity_number
from contracts.topics import DEAD_LETTER_TOPICS, subscription_of
from policy import available_profiles, load_profile
from policy.errors import ProfileError
from policy.loader import operator_overrides, parse_profile, read_yaml
from policy.whatif import WhatIfError
from runtime.kafka_access import KafkaAccessError
from services.audit import store
from services.console import charts, data
from services.console.auth import ConsoleSecrets, Users, csrf_ok, new_csrf_token
from services.console.config import ConsoleConfig
from services.console.pdf import html_to_pdf
from tools.operator import views
from tools.operator.dlt import all_dlt_names, list_letters, redrive
from tools.operator.replay import SERVICE_INPUTS
from tools.operator.whatif import Source, run_what_if, write_csv
from tools.stack.common import StackError
from tools.stack.lag import lags
from tools.stack.principals import redrivable

HERE = Path(__file__).parent
Handler = Callable[[Request], Awaitable[Response]]
MAX_UPLOAD = 256 * 1024
WHAT_IF_RUNS = 8
"""What-if reports kept for their CSV download (the latest ones)."""


class BadInput(HTTPException):
    def __init__(self, detail: str) -> None:
        super().__init__(400, detail)


def _templates() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))
    env.filters["money"] = views.money_text
    env.filters["percent"] = views.percent_text
    env.filters["signed"] = views.signed
    env.filters["masked"] = lambda text, show=False: views.masked(str(text), show)
    env.filters["mask_id"] = lambda pid, show=False: pid if show or not pid else mask_identity_number(pid)
    env.globals.update(revision_of=views.revision_of, cause_of=views.cause_of, summarize=views.summarize)
    return env


def _day(request: Request, name: str, default: date | None = None) -> date | None:
    text = request.query_params.get(name) or ""
    if not text:
        return default
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{name}: {text!r} is not a day of the form 2026-03-01") from None


def _text(value: str | None, name: str, limit: int = 80) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise BadInput(f"{name}: at most {limit} printable characters")
    return value


def _show(request: Request) -> bool:
    return request.query_params.get("show_identity") == "1"


class Console:
    """The console app's state: its configuration, the operators, the kept what-if reports."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        self.secrets = ConsoleSecrets(config.secrets)
        self.users = Users.read(self.secrets.users_file)
        self.templates = _templates()
        self.runs: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.pricing = asyncio.Lock()
        """One what-if at a time: it prices in this process (the machine's cores are the services')."""

    # -- plumbing ------------------------------------------------------------------------

    def page(self, request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        session = request.scope.get("session") or {}
        html = self.templates.get_template(template).render(
            request=request, user=session.get("user"), csrf=session.get("csrf"), show=_show(request),
            path=request.url.path, status=status, **context)
        return HTMLResponse(html, status_code=status)

    def audit(self) -> Any:
        """A read-only connection to the audit's database (`async with`)."""
        return data.reading(self.config.audit_db)

    async def form(self, request: Request) -> Any:
        """The POSTed form, once its CSRF token is the session's (else 403)."""
        form = await request.form(max_part_size=MAX_UPLOAD)
        token = form.get("csrf")
        if not csrf_ok(request.session.get("csrf"), token if isinstance(token, str) else None):
            raise HTTPException(403, "the form's CSRF token is missing or not this session's: reload the page")
        return form

    # -- sign-in -------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        target = _next(request.query_params.get("next"))
        if request.method == "GET":
            return self.page(request, "login.html", next=target, error=None)
        form = await request.form()
        user, password = str(form.get("user") or ""), str(form.get("password") or "")
        target = _next(str(form.get("next") or ""))
        if not self.users.check(user, password):
            return self.page(request, "login.html", status=401, next=target, error="wrong user or password")
        request.session.clear()
        request.session.update(user=user, csrf=new_csrf_token())
        return RedirectResponse(target, status_code=303)

    async def logout(self, request: Request) -> Response:
        await self.form(request)
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages ---------------------------------------------------------------------------

    async def kpis(self, request: Request) -> Response:
        given_start, given_end = _day(request, "from"), _day(request, "to")  # a bad day is a 400 before anything
        async with self.audit() as conn:
            year = await data.discharge_year(conn) or date.today().year
            start, end = given_start or date(year, 1, 1), given_end or date(year, 12, 31)
            if end < start:
                raise BadInput("to: the period ends before it starts")
            if (end - start).days > data.MAX_PERIOD_DAYS:
                raise BadInput(f"the period is longer than {data.MAX_PERIOD_DAYS} days")
            series = await data.kpi_series(conn, start, end)
        labels = [label for label, _ in series.periods]
        ks = [k for _, k in series.periods]
        funds = charts.line_chart("fund spending per period 基金支出 (yuan)", labels, [
            charts.Series("basic 基本医保", [k.basic_paid for k in ks]),
            charts.Series("critical illness 大病保险", [k.catastrophic_paid for k in ks]),
            charts.Series("assistance 医疗救助", [k.assistance_paid for k in ks]),
            charts.Series("patients 个人负担", [k.patient_paid for k in ks])])
        ratios = charts.line_chart("actual compensation ratio 实际补偿比", labels, [
            charts.Series("actual compensation 实际补偿比", [k.actual_compensation_ratio for k in ks])]
            + [charts.Series(f"in-policy, level {lv or '?'} 政策范围内", [_level(k, lv) for k in ks])
               for lv in series.levels()], percent=True)
        cost = charts.line_chart("average cost per stay 次均住院费用 (yuan)", labels, [
            charts.Series("cost per stay 次均费用", [k.cost_per_stay for k in ks])])
        by_level = series.total.in_policy_ratio_by_level
        levels = charts.bar_chart("in-policy reimbursement ratio by hospital level 分级政策范围内报销比",
                                  [f"level {lv.level or '?'}" for lv in by_level],
                                  [charts.Series("in-policy ratio 政策范围内报销比", [lv.ratio for lv in by_level])],
                                  percent=True)
        return self.page(request, "kpis.html", k=series.total, start=start, end=end,
                         rows=views.kpi_rows(series.total), levels=views.level_rows(series.total),
                         charts=[funds, ratios, cost, levels], periods=series.periods)

    async def alerts(self, request: Request) -> Response:
        q = request.query_params
        severity = _text(q.get("severity"), "severity")
        if severity and severity not in ("info", "low", "medium", "high"):
            raise BadInput(f"severity: {severity!r} is not one of info, low, medium, high")
        filters = dict(rule=_text(q.get("rule"), "rule"), severity=severity, hospital_id=_text(q.get("hospital"),
                       "hospital"), detected_from=_day(request, "from"), detected_to=_day(request, "to"))
        async with self.audit() as conn:
            found = await store.list_alerts(conn, limit=1000, **filters)  # type: ignore[arg-type]
            rules = [r[0] for r in await conn.fetch("SELECT DISTINCT rule FROM alert ORDER BY 1")]
        return self.page(request, "alerts.html", alerts=found, rules=rules, q=q)

    async def trace(self, request: Request) -> Response:
        claim = _text(request.query_params.get("claim"), "claim", 100)
        found = None
        if claim:
            async with self.audit() as conn:
                found = await data.trace(conn, claim)
        return self.page(request, "trace.html", claim=claim, trace=found,
                         status=404 if found is not None and not found.events and not found.pending_alerts else 200)

    async def person_year(self, request: Request) -> Response:
        """GET ?claim=…: the person-year of a claim; POST person + year (an identity number is never in a URL)."""
        if request.method == "POST":
            form = await self.form(request)
            person, year_text = _text(str(form.get("person") or ""), "person", 18), str(form.get("year") or "")
            if person is None:
                raise BadInput("person: give the 18-character identity number")
            try:
                year = int(year_text)
            except ValueError:
                raise BadInput(f"year: {year_text!r} is not a year") from None
        else:
            claim = _text(request.query_params.get("claim"), "claim", 100)
            if claim is None:
                return self.page(request, "person_year.html", py=None)
            async with self.audit() as conn:
                found = await data.person_of_claim(conn, claim)
            if found is None:
                raise HTTPException(404, f"no statement of claim {claim}")
            person, year = found
        async with self.audit() as conn:
            py = await data.person_year(self.config.prefix, conn, person, year)
        return self.page(request, "person_year.html", py=py)

    async def statement(self, request: Request) -> Response:
        claim = str(request.path_params["claim"])
        as_pdf = claim.endswith(".pdf")
        claim = claim.removesuffix(".pdf")
        async with self.audit() as conn:
            events = await store.claim_history(conn, claim)
        stated = data.statements_of(events)
        first = next((s for s in stated if s["event_type"] == "SettlementStatement"), None)
        if first is None:
            raise HTTPException(404, f"no settlement statement of claim {claim} in the audit's event store")
        html = self.templates.get_template("statement.html").render(
            request=request, first=first["payload"], statements=stated, net=data.net_amounts(stated),
            show=_show(request), claim=claim)
        if not as_pdf:
            return HTMLResponse(html)

        pdf = await asyncio.to_thread(html_to_pdf, html)
        return Response(pdf, media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="statement-{quote(claim)}.pdf"'})

    async def dead_letters(self, request: Request) -> Response:

        prefix, kafka = self.config.prefix, self.config.kafka
        names = all_dlt_names(prefix)
        groups = [(f"{prefix}medsettle.{service}.{subscription_of(t)}", prefix + t)
                  for service, topics in SERVICE_INPUTS.items() for t in topics]
        async with _broker():
            found = await asyncio.gather(*(list_letters(kafka, prefix, n) for n in names))
            lag = await lags(kafka, groups)
        letters = [(n.removeprefix(prefix), ls) for n, ls in zip(names, found, strict=True)]
        return self.page(request, "dead_letters.html", letters=letters, lag=lag, prefix=prefix,
                         redrivable={t.name for t in DEAD_LETTER_TOPICS if _redrivable(t.name)})

    async def redrive(self, request: Request) -> Response:
        """GET: what a redrive would send (a dry run) and a confirmation form; POST: redrive."""

        if request.method == "POST":
            form = await self.form(request)
            topic, offset_text = str(form.get("topic") or ""), str(form.get("offset") or "")
        else:
            topic, offset_text = request.query_params.get("topic", ""), request.query_params.get("offset", "")
        if not _redrivable(topic):
            raise BadInput(f"topic: {topic!r} is no dead-letter topic the console may redrive (it redrives the "
                           "letters of enrollment.commands and claims.discharges; others: "
                           "`./medsettle operator dlt redrive`)")
        try:
            offset = int(offset_text) if offset_text else None
        except ValueError:
            raise BadInput(f"offset: {offset_text!r} is not an offset") from None
        try:
            async with _broker():
                result = await redrive(self.config.kafka, self.config.prefix, topic, offset=offset,
                                       dry_run=request.method == "GET")
        except ValueError as exc:
            raise BadInput(str(exc)) from None
        return self.page(request, "redrive.html", topic=topic, offset=offset, result=result,
                         done=request.method == "POST")

    async def what_if(self, request: Request) -> Response:

        if request.method == "GET":
            run_id = request.query_params.get("run")
            kept = self.runs.get(run_id or "")
            return self.page(request, "whatif.html", profiles=available_profiles(), run=kept, run_id=run_id,
                             year=date.today().year if kept is None else kept["year"])
        form = await self.form(request)
        candidate, label, sets = await _candidate(form)
        try:
            year = int(str(form.get("year") or ""))
        except ValueError:
            raise BadInput(f"year: {str(form.get('year'))!r} is not a year") from None

        try:
            async with self.pricing:
                run = await run_what_if(Source(self.config.prefix), candidate, year, workers=1)
        except WhatIfError as exc:
            raise BadInput(str(exc)) from None
        run_id = uuid.uuid4().hex
        self.runs[run_id] = {"run": run, "label": label, "sets": sets, "year": year,
                             "charts": _what_if_charts(run.report)}
        while len(self.runs) > WHAT_IF_RUNS:
            self.runs.popitem(last=False)
        return RedirectResponse(f"/what-if?run={run_id}", status_code=303)

    async def what_if_csv(self, request: Request) -> Response:

        kept = self.runs.get(str(request.path_params["run"]))
        if kept is None:
            raise HTTPException(404, "no such what-if run (the console keeps the latest ones): run it again")
        out = io.StringIO()
        write_csv(kept["run"].report, out, show_identity=_show(request))
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="whatif-{kept["year"]}.csv"'})


@asynccontextmanager
async def _broker() -> AsyncIterator[None]:
    """The broker's trouble as a 503 that says what (an unreachable broker, a right the console lacks)."""
    try:
        yield
    except (KafkaAccessError, KafkaError, OSError) as exc:
        raise HTTPException(503, f"the broker: {type(exc).__name__}: {exc}") from None


def _redrivable(topic: str) -> bool:
    return topic.endswith(".dlt") and redrivable(topic.removesuffix(".dlt"))


def _level(k: Any, level: int | None) -> Decimal | None:
    return next((lv.ratio for lv in k.in_policy_ratio_by_level if lv.level == level), None)


def _next(target: str | None) -> str:
    """Where to go after signing in: a path of this site only."""
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return "/kpis"
    return target


async def _candidate(form: Any) -> tuple[Any, str, str]:
    """The candidate profile: an uploaded YAML (validated like any profile), or one of policies/ with
    `PATH=VALUE` changes, one a line (as `operator what-if --set`)."""

    upload = form.get("upload")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(MAX_UPLOAD + 1)
            if len(raw) > MAX_UPLOAD:
                raise BadInput(f"upload: a profile of at most {MAX_UPLOAD // 1024} KiB")
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BadInput("upload: the profile is not UTF-8 text") from None
            return parse_profile(read_yaml(text, upload.filename), origin=upload.filename), upload.filename, ""
        name = str(form.get("profile") or "")
        if name not in available_profiles():
            raise BadInput(f"profile: {name!r} is not one of {', '.join(available_profiles())}")
        sets = [line.strip() for line in str(form.get("set") or "").splitlines() if line.strip()]
        label = " ".join([name, *sets])
        return load_profile(name, operator_overrides(None, sets)), label, "\n".join(sets)
    except ProfileError as exc:
        raise BadInput(str(exc)) from None


def _what_if_charts(report: Any) -> list[Any]:
    o = report.overall
    funds = [("basic 基本医保", "basic"), ("critical illness 大病保险", "catastrophic"),
             ("assistance 医疗救助", "assistance"), ("patients 个人负担", "patients")]
    spending = charts.bar_chart("actual vs candidate: spending 基金支出与个人负担 (yuan)", [n for n, _ in funds], [
        charts.Series("actual 现行", [getattr(o.actual, f) for _, f in funds]),
        charts.Series("candidate 测算", [getattr(o.candidate, f) for _, f in funds])])
    levels = list(report.by_level)
    ratios = charts.bar_chart("compensation ratio by hospital level 分级实际补偿比", [f"level {lv}" for lv in levels], [
        charts.Series("actual 现行", [report.by_level[lv].actual.compensation_ratio for lv in levels]),
        charts.Series("candidate 测算", [report.by_level[lv].candidate.compensation_ratio for lv in levels])],
        percent=True)
    return [spending, ratios]


def signed_in(handler: Handler) -> Handler:
    """Only for a signed-in operator: anyone else is sent to sign in (and back here afterwards)."""

    @wraps(handler)
    async def guarded(request: Request) -> Response:
        if not request.session.get("user"):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        return await handler(request)

    return guarded


async def _healthz(request: Request) -> Response:
    return JSONResponse({"live": True})


SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),  # a claim id in a URL stays here
    (b"cache-control", b"no-store"),  # pages with personal data are not kept by the browser
]


class SecurityHeaders:
    """Every answer: no script or frame from elsewhere (the pages have no script at all), no referrer,
    not cached."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(config: ConsoleConfig) -> Starlette:
    console = Console(config)
    key = console.secrets.session_key_file.read_text().strip() or secrets.token_urlsafe(48)

    async def error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HTTPException):
            status, detail = exc.status_code, exc.detail
        elif isinstance(exc, (OSError, asyncpg.PostgresError, StackError)):  # the database is down or refuses
            status, detail = 503, f"the database: {type(exc).__name__}: {exc}"
        else:
            status, detail = 500, "the console failed; see its log"
        return console.page(request, "error.html", status=status, message=detail)

    async def readyz(request: Request) -> Response:
        """Ready when the audit's database answers as the operator role (the pages' first need)."""
        try:
            async with console.audit() as conn:
                await conn.fetchval("SELECT 1")
        except (OSError, asyncpg.PostgresError, StackError) as exc:
            return JSONResponse({"ready": False, "failed": ["database"], "database": type(exc).__name__},
                                status_code=503)
        return JSONResponse({"ready": True, "failed": []})

    async def root(request: Request) -> Response:
        return RedirectResponse("/kpis", status_code=303)

    routes = [
        Route("/healthz", _healthz),
        Route("/readyz", readyz),
        Route("/login", console.login, methods=["GET", "POST"]),
        Route("/logout", signed_in(console.logout), methods=["POST"]),
        Route("/", signed_in(root)),
        Route("/kpis", signed_in(console.kpis)),
        Route("/alerts", signed_in(console.alerts)),
        Route("/trace", signed_in(console.trace)),
        Route("/person-year", signed_in(console.person_year), methods=["GET", "POST"]),
        Route("/statement/{claim}", signed_in(console.statement)),
        Route("/dead-letters", signed_in(console.dead_letters)),
        Route("/dead-letters/redrive", signed_in(console.redrive), methods=["GET", "POST"]),
        Route("/what-if", signed_in(console.what_if), methods=["GET", "POST"]),
        Route("/what-if/{run}.csv", signed_in(console.what_if_csv)),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders), Middleware(SessionMiddleware, secret_key=key, session_cookie="medsettle_console",
                             max_age=8 * 3600, same_site="strict", https_only=config.secure_cookie)]
    return Starlette(routes=routes, middleware=middleware,
                     exception_handlers={HTTPException: error, OSError: error, asyncpg.PostgresError: error,
                                         StackError: error, Exception: error})

