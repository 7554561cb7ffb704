"""The hospitals' publisher validates every line of every file before sending anything, exactly as a
consumer will decode it, and names the file, the line and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contracts.limits import MAX_RECORD_BYTES
from tools.cli import main
from tools.hospital.publish import read_lines


def discharge_line(**over) -> dict:
    line = {"item_code": "X", "item_name": "bed", "catalogue_class": "A", "quantity": "2", "unit": "day",
            "unit_price": "10.25", "amount": "20.50", "service_date": "2026-03-02"}
    d = {"hospital_claim_id": "C1", "hospital_id": "H1", "person_id": "11010519491231002X",
         "admission_date": "2026-03-01", "discharge_date": "2026-03-05", "care_location": "in_pool", "referred": False,
         "diagnosis_codes": ["J18.9"], "lines": [line], "total_amount": "20.50"}
    d.update(over)
    return d


def command_line(**over) -> dict:
    c = {"event_type": "RegisterProvider", "payload": {
        "provider_id": "H1", "name": "县人民医院", "level": 2, "location": "in_pool", "pool_code": "500240",
        "licensed_beds": 300, "agreement_valid_from": "2026-01-01"}}
    c.update(over)
    return c


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


def test_lines_that_are_not_even_the_right_shape_are_bad_lines_not_crashes(tmp_path: Path) -> None:
    f = tmp_path / "commands.jsonl"
    f.write_bytes(b"\n".join([json.dumps(command_line()).encode(), b"[1, 2]", json.dumps({"event_type": [1],
                              "payload": {}}).encode(), b'{"event_type": "DischargeRecorded", "payload": {}}',
                              "\"caf\xe9\"".encode("latin-1"), json.dumps(command_line()).encode()]) + b"\n")
    good, bad = read_lines(f, "commands")
    assert [p.key for p in good] == ["H1", "H1"]
    assert [e.line for e in bad] == [2, 3, 4, 5]
    assert "not an enrollment command" in bad[2].reason and "not UTF-8" in bad[3].reason


def test_a_record_a_consumer_would_refuse_as_too_big_is_a_bad_line(tmp_path: Path) -> None:
    lines = [{"item_code": f"X{i}", "item_name": "一" * 200, "catalogue_class": "A", "quantity": "1", "unit": "day",
              "unit_price": "1.00", "amount": "1.00", "service_date": "2026-03-02"} for i in range(2000)]
    big = discharge_line(lines=lines, total_amount="2000.00")
    assert len(json.dumps(big, ensure_ascii=False).encode()) > MAX_RECORD_BYTES
    f = tmp_path / "bills.jsonl"
    f.write_text("\n".join(json.dumps(d) for d in (discharge_line(), big, discharge_line())) + "\n")
    good, bad = read_lines(f, "discharges")
    assert len(good) == 2 and [e.line for e in bad] == [2] and "over the limit" in bad[0].reason


@pytest.mark.parametrize("kind, bad_line", [("discharges", "{oops"), ("commands", '{"event_type": "Nope"}')])
def test_nothing_is_published_when_a_line_is_bad(tmp_path: Path, capsys, kind: str, bad_line: str) -> None:
    good = json.dumps(discharge_line() if kind == "discharges" else command_line())
    f = tmp_path / "in.jsonl"
    f.write_text(f"{good}\n{bad_line}\n{good}\n")
    assert main(["publish", kind, str(f), "--bootstrap", "127.0.0.1:1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nothing published" in err and f"{f}:2" in err


def test_the_same_file_gives_the_same_event_ids(tmp_path: Path) -> None:
    f = tmp_path / "bills.jsonl"
    f.write_text(json.dumps(discharge_line()) + "\n")
    assert read_lines(f, "discharges")[0][0].envelope.event_id == read_lines(f, "discharges")[0][0].envelope.event_id


def test_topic_prefix_comes_from_the_environment(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "bills.jsonl"
    f.write_text(json.dumps(discharge_line()) + "\n")
    sent: dict = {}

    async def fake_publish(messages, kafka, progress=True, prefix=""):
        sent.update(prefix=prefix, topics={m.topic for m in messages})
        return len(messages)

    monkeypatch.setattr("tools.hospital.publish.publish", fake_publish)
    monkeypatch.setenv("TOPIC_PREFIX", "t1234.")
    assert main(["publish", "discharges", str(f), "--bootstrap", "127.0.0.1:1", "--no-progress"]) == 0
    assert sent == {"prefix": "t1234.", "topics": {"hospital.H1.requests"}}  # the hospital's own topic
    assert main(["publish", "discharges", str(f), "--bootstrap", "127.0.0.1:1", "--no-progress", "--prefix", "x."]) == 0
    assert sent["prefix"] == "x."
    assert main(["publish", "discharges", str(f), "--bootstrap", "127.0.0.1:1", "--no-progress", "--direct"]) == 0
    assert sent["topics"] == {"claims.discharges"}  # an operator's back-fill


def correction_line(**over) -> dict:
    return {**discharge_line(discharge_date="2026-03-04"), "correction_reason": "discharged a day earlier", **over}


def reversal_line(**over) -> dict:
    return {"hospital_claim_id": "C1", "hospital_id": "H1", "person_id": "11010519491231002X",
            "reason": "patient was not admitted", **over}


@pytest.mark.parametrize("kind, good, event_type", [("corrections", correction_line, "DischargeCorrected"),
                                                    ("reversals", reversal_line, "ReversalRequested")])
def test_corrections_and_reversals_are_prepared_like_discharges(tmp_path: Path, kind: str, good, event_type: str
                                                                ) -> None:
    f = tmp_path / f"{kind}.jsonl"
    f.write_text(json.dumps(good()) + "\n")
    [p], bad = read_lines(f, kind)
    assert bad == [] and p.topic == "hospital.H1.requests" and p.key == "11010519491231002X"
    env = p.envelope
    assert (env.event_type, env.producer, env.correlation_id) == (event_type, "hospital:H1", "H1:C1")
    assert read_lines(f, kind)[0][0].envelope.event_id == env.event_id  # derived from the content
    f.write_text(json.dumps(good(hospital_claim_id="C2")) + "\n")
    assert read_lines(f, kind)[0][0].envelope.event_id != env.event_id
    # a discharge is not a correction (no reason), and a correction is not a reversal (no reason either)
    f.write_text(json.dumps(discharge_line() if kind == "corrections" else correction_line()) + "\n")
    [e] = read_lines(f, kind)[1]
    assert e.line == 1 and e.reason.startswith("correction_reason:" if kind == "corrections" else "reason:"), e.reason


def test_bad_corrections_and_reversals_are_reported_with_their_line_and_field(tmp_path: Path) -> None:
    f = tmp_path / "corrections.jsonl"
    f.write_text("\n".join([json.dumps(correction_line()), json.dumps(correction_line(correction_reason="")),
                            json.dumps(correction_line(total_amount="99.00")),
                            json.dumps(correction_line(discharge_date="2026-02-28")), "{oops",
                            json.dumps(correction_line(correction_reason="bad\u0007bell"))]) + "\n")
    good, bad = read_lines(f, "corrections")
    assert len(good) == 1
    assert [(e.line, e.reason.split(":")[0]) for e in bad] == [
        (2, "correction_reason"), (3, "line"), (4, "line"), (5, "not JSON"), (6, "correction_reason")]
    assert "total_amount 99.00 is not the sum of the lines" in bad[1].reason
    assert "is before admission_date" in bad[2].reason
    r = tmp_path / "reversals.jsonl"
    r.write_text("\n".join([json.dumps(reversal_line(person_id="not an id!")), json.dumps(reversal_line()),
                            json.dumps({k: v for k, v in reversal_line().items() if k != "reason"}),
                            json.dumps(reversal_line(hospital_claim_id="x" * 65))]) + "\n")
    good, bad = read_lines(r, "reversals")
    assert len(good) == 1
    assert [(e.line, e.reason.split(":")[0]) for e in bad] == [(1, "person_id"), (3, "reason"), (4, "hospital_claim_id")]


@pytest.mark.parametrize("kind, good", [("corrections", correction_line), ("reversals", reversal_line)])
def test_nothing_is_published_when_a_correction_or_reversal_line_is_bad(tmp_path: Path, capsys, kind: str,
                                                                        good) -> None:
    f = tmp_path / "in.jsonl"
    f.write_text(f"{json.dumps(good())}\n{json.dumps(good(hospital_id='H 1'))}\n")
    assert main(["publish", kind, str(f), "--bootstrap", "127.0.0.1:1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "nothing published" in err and f"{f}:2" in err and "hospital_id: String should match pattern" in err
