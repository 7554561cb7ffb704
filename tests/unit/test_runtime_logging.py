"""Logs never carry identity numbers or names in clear."""

import json

import structlog

from runtime.logging import configure_logging, mask_identity_numbers


def test_identity_numbers_inside_text_are_masked() -> None:
    assert mask_identity_numbers("claim of 11010519491231002X failed") == "claim of 110105********002X failed"
    assert mask_identity_numbers("order 123") == "order 123"


def test_personal_keys_and_embedded_numbers_are_masked_in_json_logs(capsys) -> None:
    configure_logging("INFO", service="test")
    structlog.get_logger().info("enrolled 11010519491231002X", person_id="11010519491231002X", name="张三",
                                detail={"person_name": "李四", "note": "id 11010519491231002X"})
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "11010519491231002X" not in line and "张三" not in line and "李四" not in line
    record = json.loads(line)
    assert record["person_id"] == "110105********002X"
    assert record["name"] == "张*"
    assert record["service"] == "test"
