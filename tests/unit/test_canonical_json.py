"""`contracts.codec.canonical_json` gives exactly the bytes of `json.dumps(..., sort_keys=True,
separators=(",", ":"))`, which every stored content digest was taken of: on generated discharges
(Chinese item names), on hostile text (control characters, quotes, backslashes, characters above
U+FFFF, lone surrogates, U+2028) and on any JSON-mode value hypothesis makes."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.codec import canonical_json
from tools.generate import generate_discharges, generate_population


def reference(content: object) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def test_generated_discharges_give_the_same_bytes() -> None:
    providers, persons = generate_population(persons=50, providers=5, seed=3, year=2026)
    discharges = generate_discharges(60, seed=3, year=2026, providers=providers, persons=persons)
    dumps = [d.model_dump(mode="json") for d in discharges]
    assert any(not json.dumps(d, ensure_ascii=False).isascii() for d in dumps)  # the names are Chinese
    for d in dumps:
        assert canonical_json(d) == reference(d)


HOSTILE = ["", "\x00\x01\x1f\x7f", '"\\/', "\n\r\t\b\f", "\u2028\u2029", "é ß ü", "床位费", "😀𝄞", "\ud800",
           "a\udfffb", "\ufeff", "\uffff", "\U0010ffff",
           "\\x41 床", "\\U0001f600 床", "床\\", "\\u5e8a", "床\x7f", "床é"]


def test_hostile_text_gives_the_same_bytes() -> None:
    for text in HOSTILE:
        content = {text: text, "list": [text, {text: None}], "n": -1, "b": True}
        assert canonical_json(content) == reference(content), repr(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**63 - 1) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)


@settings(max_examples=500, deadline=None)
@given(json_values)
def test_any_json_value_gives_the_same_bytes(content: object) -> None:
    assert canonical_json(content) == reference(content)


def test_encode_json_is_the_models_own_json() -> None:
    from contracts.codec import encode_json

    providers, persons = generate_population(persons=20, providers=3, seed=4, year=2026)
    for d in generate_discharges(20, seed=4, year=2026, providers=providers, persons=persons):
        assert encode_json(d.model_dump(mode="json")) == d.model_dump_json()
