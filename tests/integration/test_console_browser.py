"""The operator console in a real headless Chromium (Playwright, Debian's /usr/bin/chromium) on the
data of a small demo run: a generated population and a year of discharges settled by the real
services in a test namespace, recorded by the audit, plus one dead letter. The browser signs in and
opens every page; what it sees is checked against what the operator's commands compute (the same
functions, `operator kpis`'s `compute_kpis`, `store.list_alerts`, `store.claim_history`, `run_what_if`)
and against the statements the platform published. Screenshots go to `MEDSETTLE_SCREENSHOTS`
(docs/screenshots/ holds the committed ones), else to the test's temporary directory."""

from __future__ import annotations

import asyncio
import io
import os
import socket
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pypdf
import pytest
import uvicorn
from playwright.async_api import Page, async_playwright

from contracts import DischargeRecorded, SettlementAdjusted, SettlementReversed, SettlementStatement
from contracts.topics import ALERTS, BASIC_SETTLED, CATASTROPHIC_SETTLED, DISCHARGES, STATEMENTS
from policy import load_profile
from policy.loader import operator_overrides
from runtime.kafka_access import KafkaAccess
from services.audit import store
from services.audit.app import SPEC as AUDIT
from services.audit.kpis import KpiQuery, compute_kpis, compute_series
from services.console.app import create_app
from services.console.auth import OPERATOR, ConsoleSecrets
from services.console.config import ConsoleConfig
from tests.corrections import reversal
from tests.integration.harness import Namespace, payloads, run_operator, wait_drained
from tests.integration.platform import CHAIN, platform, register
from tools.generate import generate_discharges, generate_population
from tools.operator.commands import database_conn
from tools.operator.views import kpi_rows, level_rows
from tools.operator.whatif import Source, run_what_if, write_csv

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
YEAR = 2026
STATEMENT_MODELS = (SettlementStatement, SettlementAdjusted, SettlementReversed)
PROVIDERS, PERSONS = generate_population(persons=150, providers=10, seed=11, year=YEAR)
STREAM = generate_discharges(160, seed=11, year=YEAR, providers=PROVIDERS, persons=PERSONS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def console_server(ns: Namespace, kafka: KafkaAccess, secrets: Path) -> AsyncIterator[str]:
    """The console app served by uvicorn in this event loop; yields its base URL."""
    ConsoleSecrets(secrets).ensure()
    app = create_app(ConsoleConfig(kafka, secrets, ns.prefix))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def _audited(ns: Namespace, claims: int) -> None:
    """Wait until the audit's event store holds a statement of every claim."""
    conn = await ns.connect("audit")
    try:
        for _ in range(600):
            found = await conn.fetchval(
                "SELECT count(DISTINCT claim_id) FROM event_store WHERE topic = $1 AND error IS NULL", STATEMENTS)
            if found >= claims:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the audit stored statements of {found} of {claims} claims")
    finally:
        await conn.close()


def _shots() -> Path | None:
    where = os.environ.get("MEDSETTLE_SCREENSHOTS")
    return Path(where) if where else None


async def _shot(page: Page, name: str, tmp: Path, full_page: bool = False) -> None:
    folder = _shots() or tmp
    folder.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(folder / f"{name}.png"), full_page=full_page)


async def _cells(page: Page, selector: str) -> list[list[str]]:
    rows: list[list[str]] = await page.eval_on_selector_all(
        f"{selector} tr", "rows => rows.map(r => Array.from(r.children).map(c => c.innerText.trim()))")
    return rows


async def _svg_shapes(page: Page, selector: str) -> list[int]:
    """For each chart: how many drawn data shapes (lines, points, bars) with a non-empty box it has."""
    counts: list[int] = await page.eval_on_selector_all(selector, """charts => charts.map(svg =>
        Array.from(svg.querySelectorAll('polyline.series, circle.point, rect.bar'))
             .filter(e => { const b = e.getBBox(); return b.width > 0 || b.height > 0; }).length)""")
    return counts


async def test_operator_console_in_a_browser(ns: Namespace, tmp_path: Path) -> None:
    by_person: dict[str, list[DischargeRecorded]] = defaultdict(list)
    for d in STREAM:
        by_person[d.person_id].append(d)
    undone = max(by_person.values(), key=len)[0]  # the first claim of the busiest person-year, reversed (冲正)
    claim, person = undone.claim_id, undone.person_id
    async with platform(ns, (*CHAIN, AUDIT)):
        await register(ns, PERSONS, PROVIDERS)
        await ns.publish(DISCHARGES, [(d.person_id, d) for d in STREAM])
        await ns.publish(DISCHARGES, [(person, b'{"not": "a discharge"}')])  # a dead letter
        await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(STREAM), timeout=180)
        await ns.publish(DISCHARGES, [(person, reversal(undone))])
        records = await ns.read(STATEMENTS, until=lambda rs: any(
            isinstance(s, SettlementReversed) for s in payloads(rs, *STATEMENT_MODELS)), timeout=120)
        await wait_drained(ns, [("settlement", DISCHARGES), ("catastrophic", BASIC_SETTLED),
                                ("assistance", CATASTROPHIC_SETTLED), ("audit", STATEMENTS), ("audit", ALERTS)])
        records = await ns.read(STATEMENTS, until=lambda rs: len(rs) >= len(records))
        await ns.read(DISCHARGES + ".dlt", until=lambda rs: len(rs) >= 1)
    stated = list({(s.claim_id, type(s).__name__, s.revision): s
                   for s in payloads(records, *STATEMENT_MODELS)}.values())
    statements = {s.claim_id: s for s in stated if isinstance(s, SettlementStatement)}
    audit_db = ns.settings("audit").database

    conn = await database_conn(audit_db)  # what `operator kpis|alerts|trace` read, as they read it
    try:
        kpis = await compute_kpis(conn, KpiQuery(date(YEAR, 1, 1), date(YEAR, 12, 31)))
        alerts = await store.list_alerts(conn)
        sampled = await store.list_alerts(conn, rule="manual_review_sample")
        history = await store.claim_history(conn, claim)
        months = await compute_series(conn, KpiQuery(date(YEAR, 1, 1), date(YEAR, 12, 31)), "month")
        for month in months:  # the charts' periods: one grouped pass, the same numbers as `operator kpis` of each
            last = date(YEAR + month.start.month // 12, month.start.month % 12 + 1, 1) - timedelta(days=1)
            alone = await compute_kpis(conn, KpiQuery(month.start, last))
            assert (month.settled, month.basic_paid, month.catastrophic_paid, month.assistance_paid, month.patient_paid,
                    month.actual_compensation_ratio, month.cost_per_stay, month.in_policy_ratio_by_level) == (
                alone.settled, alone.basic_paid, alone.catastrophic_paid, alone.assistance_paid, alone.patient_paid,
                alone.actual_compensation_ratio, alone.cost_per_stay, alone.in_policy_ratio_by_level), month
        assert sum(m.basic_paid for m in months) == kpis.basic_paid and len(months) == 12
    finally:
        await conn.close()
    assert kpis.basic_paid == sum((s.hifp_pay for s in stated), Decimal(0))  # net: the statements summed
    assert kpis.reversed == 1 and alerts and sampled

    async with console_server(ns, await ns.console_access(), tmp_path / "console") as base, async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-dev-shm-usage"])
        page = await browser.new_page(viewport={"width": 1280, "height": 860}, locale="zh-CN")

        # -- no anonymous access: every page sends an unsigned browser to sign in ----------------
        for path in ("/kpis", "/alerts", "/trace", "/person-year", "/dead-letters", "/what-if", f"/statement/{claim}"):
            answer = await page.request.get(base + path, max_redirects=0)
            assert answer.status == 303 and answer.headers["location"].startswith("/login?next="), path
        answer = await page.request.post(base + "/dead-letters/redrive", form={"topic": "claims.discharges.dlt"},
                                         max_redirects=0)
        assert answer.status == 303 and answer.headers["location"].startswith("/login")
        await page.goto(base + "/alerts?rule=manual_review_sample")
        assert page.url.startswith(base + "/login?next=")
        await _shot(page, "login", tmp_path)
        await page.fill("input[name=user]", OPERATOR)
        await page.fill("input[name=password]", "not the password")
        await page.click("button[type=submit]")
        assert "wrong user or password" in await page.inner_text("main")
        password = (tmp_path / "console" / f"{OPERATOR}.password").read_text().strip()
        await page.fill("input[name=user]", OPERATOR)
        await page.fill("input[name=password]", password)
        await page.click("button[type=submit]")
        assert page.url == base + "/alerts?rule=manual_review_sample"  # back where it was sent from

        # -- alerts: listed, filtered ------------------------------------------------------------
        rows = (await _cells(page, "#alerts"))[1:]
        assert len(rows) == len(sampled) and {r[1] for r in rows} == {"manual_review_sample"}
        await page.goto(base + "/alerts")
        rows = (await _cells(page, "#alerts"))[1:]
        assert len(rows) == len(alerts)
        assert {r[3] for r in rows} == {a["claim_id"] or "-" for a in alerts}
        text = await page.inner_text("main")
        assert not any(a["person_id"] in text for a in alerts if a["person_id"])  # identity numbers masked
        await page.select_option("select[name=severity]", "high")
        await page.click("form.filters button")
        assert "severity=high" in page.url
        assert all(r[2] == "high" for r in (await _cells(page, "#alerts"))[1:] if len(r) > 2)
        answer = await page.request.get(base + "/alerts?from=yesterday")
        assert answer.status == 400 and "is not a day of the form 2026-03-01" in await answer.text()
        await page.goto(base + "/alerts")
        await _shot(page, "alerts", tmp_path)

        # -- KPIs: the numbers of `operator kpis`, charts drawn -----------------------------------
        await page.goto(base + "/kpis")
        shown = {r[0]: r[1] for r in await _cells(page, "#kpi-table") if len(r) == 2}
        assert shown == dict(kpi_rows(kpis))
        assert shown["basic fund 基本医保统筹支出"] == f"{kpis.basic_paid:,.2f}"
        code, cli_kpis = await run_operator(ns, "kpis", "--from", f"{YEAR}-01-01", "--to", f"{YEAR}-12-31")
        assert code == 0 and all(f" {value} │" in cli_kpis for value in shown.values()), cli_kpis  # the CLI's table
        levels = [r for r in await _cells(page, "#levels") if r and r[0] != "level 级别"]
        assert [tuple(r) for r in levels] == level_rows(kpis)
        for bad, says in (("from=2026-02-30", "is not a day"), ("from=2026-05-01&to=2026-04-01", "ends before")):
            answer = await page.request.get(f"{base}/kpis?{bad}")
            assert answer.status == 400 and says in await answer.text(), bad
        shapes = await _svg_shapes(page, "svg.chart")
        assert len(shapes) == 4 and all(n > 0 for n in shapes), shapes
        await _shot(page, "kpis", tmp_path, full_page=True)

        # -- a claim's trace, in order -----------------------------------------------------------
        await page.goto(base + "/trace")
        await page.fill("input[name=claim]", claim)
        await page.click("form.filters button")
        kinds = await page.eval_on_selector_all("#timeline li.event .type", "xs => xs.map(x => x.innerText)")
        assert kinds[:len(history)] == [e["event_type"] for e in history]
        assert kinds[0] == "DischargeRecorded"
        assert kinds.index("BasicSettled") < kinds.index("CatastrophicSettled") < kinds.index("SettlementStatement") \
            < kinds.index("ReversalRequested") < kinds.index("SettlementReversed")
        assert "REVERSAL" in await page.inner_text("#timeline")
        await _shot(page, "trace", tmp_path, full_page=True)

        # -- the claim's person-year: accumulators, remaining caps, statements --------------------
        await page.click("text=person-year of this claim")
        caps = {r[0]: r for r in await _cells(page, "#caps") if len(r) == 6}
        layer_db = await ns.connect("settlement")
        try:
            paid = await layer_db.fetchval("SELECT paid FROM accumulator WHERE person_id = $1 AND insurance_year = $2",
                                           person, YEAR)
        finally:
            await layer_db.close()
        profile = load_profile(statements[claim].profile_id or "demo-county")
        assert profile.basic is not None
        assert caps["basic 基本医保"][4] == f"{profile.basic.annual_cap:,.2f}"
        assert caps["basic 基本医保"][5] == f"{profile.basic.annual_cap - paid:,.2f}"
        assert person not in await page.inner_text("main")
        mine = [s for s in stated if s.person_id == person]
        kinds = [r[2] for r in (await _cells(page, "#statements"))[1:]]
        assert len(kinds) == len(mine) and "reversal 冲正" in kinds
        assert await page.locator("table.ledger tr.reversed").count() == 3  # the reversed claim in every layer
        await _shot(page, "person-year", tmp_path, full_page=True)
        await page.goto(page.url + "&show_identity=1")  # the operator asks for the identity numbers
        assert person in await page.inner_text("main")
        assert (await page.request.get(f"{base}/person-year?claim=H0:NOSUCH")).status == 404
        assert (await page.request.get(f"{base}/statement/H0:NOSUCH.pdf")).status == 404
        await page.fill("input[name=person]", person)  # asked by identity number: a POST, never in a URL
        await page.fill("input[name=year]", str(YEAR))
        await page.click("form.filters button")
        assert person not in page.url
        assert len((await _cells(page, "#statements"))[1:]) == len(mine)

        # -- the printable statement, and as PDF --------------------------------------------------
        first = statements[claim]
        await page.goto(f"{base}/statement/{claim}")
        amounts = {r[1]: r[2] for r in await _cells(page, "#amounts") if len(r) == 3}
        assert amounts["hifp_pay"] == str(first.hifp_pay) and amounts["psn_pay"] == str(first.psn_pay)
        assert amounts["medfee_sumamt"] == str(first.total_cost) and amounts["maf_pay"] == str(first.maf_pay)
        assert "一站式结算单" in await page.inner_text("h1")
        net = (await _cells(page, "#later"))[-1]
        assert net[0] == "净额 net" and net[2:] == ["0.00"] * 5  # reversed: it nets to zero
        await _shot(page, "statement", tmp_path, full_page=True)
        printed = tmp_path / "statement-print.pdf"
        await page.emulate_media(media="print")
        await page.pdf(path=str(printed), format="A4")  # what the browser's print makes of it
        answer = await page.request.get(f"{base}/statement/{claim}.pdf")
        assert answer.status == 200 and answer.headers["content-type"] == "application/pdf"
        served = await answer.body()
        for pdf in (printed.read_bytes(), served):
            assert pdf.startswith(b"%PDF-") and len(pdf) > 2000
            text = "".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages)
            assert str(first.hifp_pay) in text and str(first.psn_pay) in text and "hifp_pay" in text
        text = pypdf.PdfReader(io.BytesIO(served)).pages[0].extract_text()
        assert "医疗费总额" in text and "基本医疗保险统筹基金支出" in text  # the Chinese labels, as text
        await page.emulate_media(media="screen")

        # -- dead letters: listed, redriven after a confirmation ------------------------------------
        await page.goto(base + "/dead-letters")
        letters = await _cells(page, "#dlt-claims-discharges-dlt")
        assert len(letters) == 2 and letters[1][1] == "pending", letters
        lag = {r[0]: r[2] for r in await _cells(page, "#lag") if len(r) == 3}
        assert lag[f"{ns.prefix}medsettle.settlement.claims.discharges"] == "0"
        await _shot(page, "dead-letters", tmp_path)
        await page.click("#dlt-claims-discharges-dlt >> text=redrive…")
        assert "would be republished" in await page.inner_text("main")
        await page.click("#confirm-redrive")
        assert "1 redriven, 0 skipped" in await page.inner_text("#redriven")
        await page.goto(base + "/dead-letters")
        assert (await _cells(page, "#dlt-claims-discharges-dlt"))[1][1] == "redriven"
        forged = await page.request.post(base + "/dead-letters/redrive",
                                         form={"topic": "claims.discharges.dlt", "csrf": "forged"})
        assert forged.status == 403  # a POST without the session's CSRF token changes nothing

        # -- policy what-if: actual vs candidate, a chart, the CSV ----------------------------------
        await page.goto(base + "/what-if")
        await page.select_option("select[name=profile]", "demo-county")
        await page.fill("input[name=year]", str(YEAR))
        await page.click("#run-what-if")
        await page.wait_for_selector("#comparison")
        comparison = {r[0]: r[1:] for r in (await _cells(page, "#comparison"))[1:] if len(r) == 4}
        assert comparison["basic 基本医保"][0] == f"{kpis.basic_paid:,.2f}"  # actual = what was paid
        assert all(diff in ("0.00", "") for _, _, diff in comparison.values()), comparison  # the live profile
        change = "catastrophic.threshold=3000.00"  # a candidate: critical illness from 3,000 yuan on
        await page.fill("textarea[name=set]", change)
        await page.click("#run-what-if")
        await page.wait_for_selector("#comparison")
        comparison = {r[0]: r[1:] for r in (await _cells(page, "#comparison"))[1:] if len(r) == 4}
        actual, candidate, difference = comparison["critical illness 大病保险"]
        assert actual == f"{kpis.catastrophic_paid:,.2f}" and difference.startswith("+"), comparison
        shapes = await _svg_shapes(page, "#what-if-result ~ .charts svg.chart")
        assert len(shapes) == 2 and all(n > 0 for n in shapes), shapes
        await _shot(page, "what-if", tmp_path, full_page=True)
        csv_link = await page.get_attribute("#csv", "href")
        answer = await page.request.get(base + str(csv_link))
        run = await run_what_if(Source(ns.prefix), load_profile("demo-county", operator_overrides(None, [change])), YEAR,
                                workers=1)
        expected = io.StringIO()
        write_csv(run.report, expected)
        assert answer.status == 200 and await answer.text() == expected.getvalue()
        assert run.report.overall.candidate.catastrophic == Decimal(candidate.replace(",", ""))
        bad = await page.request.post(base + "/what-if", multipart={
            "csrf": await page.get_attribute("input[name=csrf]", "value") or "", "year": str(YEAR),
            "upload": {"name": "candidate.yaml", "mimeType": "text/yaml", "buffer": b"id: x\nbasic: [1, 2\n"}})
        assert bad.status == 400 and "not valid YAML" in await bad.text()

        # -- signing out ends the session ------------------------------------------------------------
        await page.click("header form.logout button")
        await page.goto(base + "/kpis")
        assert page.url.startswith(base + "/login")
        await browser.close()


def _unsigned_get(url: str) -> tuple[int, str | None]:
    """GET without following a redirect: (status, Location)."""
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any) -> None:
            return None

    try:
        with urllib.request.build_opener(NoRedirect).open(url, timeout=5) as answer:
            return answer.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["location"]


async def test_the_console_runs_as_a_process_and_reports_ready(ns: Namespace, tmp_path: Path) -> None:
    """`python -m services.console` as `services start` runs it: its endpoint file, /readyz, sign-in required."""
    import json
    import subprocess

    from runtime.health import probe
    from runtime.settings import OPERATOR_ROLE
    from tools.stack.connection import passfile
    from tools.stack.pg import with_user
    from tools.stack.services import spawn

    ns.database("audit")  # the audit's database of the namespace (the console reads it as the operator role)
    secrets, port = tmp_path / "console", _free_port()
    ConsoleSecrets(secrets).ensure()
    endpoint = tmp_path / "console.health.json"
    env = {**(await ns.console_access()).env(), "DATABASE_URL": with_user(ns.server_url, OPERATOR_ROLE),
           "PGPASSFILE": passfile(OPERATOR_ROLE) or "", "TOPIC_PREFIX": ns.prefix, "CONSOLE_SECRETS": str(secrets),
           "CONSOLE_PORT": str(port), "HEALTH_PORT_FILE": str(endpoint)}
    proc = spawn("console", env, tmp_path / "console.log", detach=False)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            status, body = await asyncio.to_thread(probe, base + "/readyz", 2.0)
            if status:
                break
            assert proc.poll() is None, (tmp_path / "console.out").read_text()
            await asyncio.sleep(0.1)
        assert (status, body) == (200, {"ready": True, "failed": []})
        assert json.loads(endpoint.read_text())["url"] == base
        assert await asyncio.to_thread(_unsigned_get, base + "/kpis") == (303, "/login?next=%2Fkpis")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
