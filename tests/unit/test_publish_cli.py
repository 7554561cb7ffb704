"""The hospitals' publisher validates every line before sending and names the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

from tools.publish import main, read_lines


def discharge_line(**over) -> dict:
    line = {"item_code": "X", "item_name": "bed", "catalogue_class": "A", "quantity": "2", "unit": "day",
            "unit_price": "10.25", "amount": "20.50", "service_date": "2026-03-02"}
    d = {"hospital_claim_id": "C1", "hospital_id": "H1", "person_id": "11010519491231002X",
         "admission_date": "2026-03-01", "discharge_date": "2026-03-05", "care_location": "in_pool", "referred": False,
         "diagnosis_codes": ["J18.9"], "lines": [line], "total_amount": "20.50"}
    d.update(over)
    return d


def test_bad_lines_are_reported_with_their_numbers(tmp_path: Path) -> None:
    f = tmp_path / "bills.jsonl"
    bad_amount = discharge_line()
    bad_amount["lines"][0]["amount"] = "20.49"
    f.write_text("\n".join([json.dumps(discharge_line()), "{oops", json.dumps(bad_amount),
                            json.dumps(discharge_line(total_amount=20.5))]) + "\n")
    good, bad = read_lines(f, "discharges")
    assert len(good) == 1 and good[0].key == "11010519491231002X"
    assert [(e.line, e.reason.split(":")[0]) for e in bad] == [(2, "not JSON"), (3, "lines.0"), (4, "total_amount")]
    assert "not a float" in bad[2].reason


def test_nothing_is_published_when_a_line_is_bad(tmp_path: Path, capsys) -> None:
    f = tmp_path / "bills.jsonl"
    f.write_text(json.dumps(discharge_line()) + "\n{oops\n")
    assert main(["discharges", str(f), "--bootstrap", "127.0.0.1:1", "--no-progress"]) == 1
    assert "nothing published" in capsys.readouterr().err


def test_the_same_file_gives_the_same_event_ids(tmp_path: Path) -> None:
    f = tmp_path / "bills.jsonl"
    f.write_text(json.dumps(discharge_line()) + "\n")
    assert read_lines(f, "discharges")[0][0].envelope.event_id == read_lines(f, "discharges")[0][0].envelope.event_id


def test_topic_prefix_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "bills.jsonl"
    f.write_text(json.dumps(discharge_line()) + "\n")
    sent: dict = {}

    async def fake_publish(messages, bootstrap, progress=True, prefix=""):
        sent.update(prefix=prefix, topics={m.topic for m in messages})
        return len(messages)

    monkeypatch.setattr("tools.publish.publish", fake_publish)
    monkeypatch.setenv("TOPIC_PREFIX", "t1234.")
    assert main(["discharges", str(f), "--bootstrap", "127.0.0.1:1", "--no-progress"]) == 0
    assert sent == {"prefix": "t1234.", "topics": {"claims.discharges"}}
    assert main(["discharges", str(f), "--bootstrap", "127.0.0.1:1", "--no-progress", "--prefix", "x."]) == 0
    assert sent["prefix"] == "x."
