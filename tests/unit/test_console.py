"""The operator console's pieces that need no stack: password hashes, the generated secrets, CSRF,
where a sign-in may send the browser, the SVG charts, and the console principal's rights."""

from __future__ import annotations

import json
import stat
from decimal import Decimal
from pathlib import Path

from contracts.topics import TOPICS, dead_letter_topic
from services.console.app import _next
from services.console.auth import OPERATOR, ConsoleSecrets, Users, csrf_ok, hash_password, verify_password
from services.console.charts import Series, _nice_max, bar_chart, line_chart
from tools.stack.principals import CONSOLE, STACK_PRINCIPALS, console_acls, redrivable


def test_a_password_is_kept_as_a_salted_scrypt_hash() -> None:
    stored = hash_password("s3cret")
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert stored != hash_password("s3cret")  # a fresh salt each time
    assert verify_password("s3cret", stored)
    assert not verify_password("s3cret ", stored) and not verify_password("", stored)
    assert not verify_password("s3cret", "plain:s3cret") and not verify_password("s3cret", "scrypt$x$y")


def test_the_stack_generates_the_operator_password_readable_by_its_owner_only(tmp_path: Path) -> None:
    secrets = ConsoleSecrets(tmp_path / "console")
    made = secrets.ensure()
    assert len(made) == 2 and secrets.ensure() == []  # idempotent
    password = secrets.password_file.read_text()
    for path in (secrets.password_file, secrets.users_file, secrets.session_key_file):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert password not in secrets.users_file.read_text()
    assert set(json.loads(secrets.users_file.read_text())) == {OPERATOR}
    users = Users.read(secrets.users_file)
    assert users.check(OPERATOR, password)
    assert not users.check(OPERATOR, password + "x") and not users.check("root", password)


def test_csrf_tokens_must_match_the_sessions() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd") and not csrf_ok(None, None) and not csrf_ok("", "") and not csrf_ok("abc", None)


def test_signing_in_sends_the_browser_to_this_site_only() -> None:
    assert _next("/alerts?rule=x") == "/alerts?rule=x"
    for elsewhere in ("https://evil.example/", "//evil.example/x", "", None, "javascript:alert(1)"):
        assert _next(elsewhere) == "/kpis"


def test_charts_draw_one_shape_per_value() -> None:
    assert _nice_max(Decimal("0.59")) == Decimal("1.0") and _nice_max(Decimal("37358.55")) == Decimal("5E+4")
    assert _nice_max(Decimal(0)) == 1
    svg = line_chart("funds", ["01", "02", "03"], [Series("basic 基本医保", [Decimal("10.00"), None, Decimal("5.50")])])
    assert svg.count('class="point"') == 2 and "<polyline" in svg and "基本医保" in svg
    bars = bar_chart("a vs c", ["basic", "patients"], [Series("actual", [Decimal(3), Decimal(4)]),
                                                       Series("candidate", [Decimal(5), Decimal(0)])])
    assert bars.count('class="bar"') == 4
    assert "<script" not in line_chart("<script>", ["<b>"], [Series("<i>", [Decimal(1)])])  # text is escaped


def test_the_console_reads_dead_letters_and_lag_and_writes_only_what_it_redrives() -> None:
    assert CONSOLE in STACK_PRINCIPALS
    acls = console_acls("t1.")
    assert {a.principal for a in acls} == {"User:console"}
    assert all(a.name.startswith("t1.") for a in acls)
    assert all(a.operation in ("read", "write", "describe") for a in acls)
    reads = {a.name for a in acls if a.operation == "read" and a.resource_type == "topic"}
    assert reads == {f"t1.{dead_letter_topic(t.name)}" for t in TOPICS}  # no claim topic is read
    writes = {a.name for a in acls if a.operation == "write"}
    assert writes == {"t1.claims.discharges", "t1.enrollment.commands"}  # inputs from outside, no service output
    assert {t.name for t in TOPICS if redrivable(t.name)} == {"claims.discharges", "enrollment.commands"}
    assert not any("hospital." in a.name for a in acls)
    groups = {(a.name, a.pattern, a.operation) for a in acls if a.resource_type == "group"}
    assert groups == {("t1.medsettle.operator.redrive", "literal", "read"), ("t1.medsettle.", "prefixed", "describe")}


def test_services_start_gives_the_console_the_operator_role_and_its_own_secrets(tmp_path: Path, monkeypatch) -> None:
    import socket

    import pytest

    from tools.stack import services
    from tools.stack.common import StackError

    monkeypatch.setenv("MEDSETTLE_LOCAL", str(tmp_path))
    monkeypatch.delenv("PGPASSFILE", raising=False)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("CONSOLE_PORT", str(busy.getsockname()[1]))
        with pytest.raises(StackError, match="is in use"):
            services._console_connection("postgresql://medsettle_admin@127.0.0.1:15432", None)
    env = services._console_connection("postgresql://medsettle_admin@127.0.0.1:15432", None)
    assert env["DATABASE_URL"] == "postgresql://medsettle_operator@127.0.0.1:15432"
    assert env["CONSOLE_SECRETS"] == str(tmp_path / "secrets" / "console")
    assert ConsoleSecrets(Path(env["CONSOLE_SECRETS"])).users_file.is_file()
    assert services.console_password_file() == tmp_path / "secrets" / "console" / "operator.password"
    password = services.console_password_file().read_text()
    assert not any(password in value for value in env.values())  # the console is given paths, never the password


def test_the_statement_pdf_fetches_the_consoles_stylesheet_and_nothing_else() -> None:
    import pytest

    from services.console.pdf import StaticOnly

    fetcher = StaticOnly()
    css = fetcher.fetch("http://console.invalid/static/statement.css")
    assert css.content_type == "text/css" and b"@page" in css.read()
    for elsewhere in ("http://example.com/x.png", "http://console.invalid/static/../pdf.py", "file:///etc/passwd",
                      "http://console.invalid/kpis"):
        with pytest.raises(ValueError, match="only the console's static files"):
            fetcher.fetch(elsewhere)
