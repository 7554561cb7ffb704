"""`contracts.codec.decode` on hostile bytes: it returns an envelope or raises `ContractError` —
nothing else — and refuses every catalogue case whose bytes break the contract, naming the problem.

The catalogue (`tests/hostile/catalogue.py`) breaks a valid envelope of each consumed topic in one
way each; the fuzz mutator (`tests/hostile/fuzz.py`) breaks them at random, by seed. Cases about
the Kafka key (`key_mismatch`, `null_key`) are not visible to `decode` and are left to the
integration test; `version_3e9` is valid (versions are 64-bit).
"""

from __future__ import annotations

import re
from collections import Counter

import pytest

from contracts import EVENT_TYPES, ContractError, decode
from contracts.topics import BY_NAME
from runtime.logging import mask_identity_numbers
from tests.hostile.catalogue import ACCEPTED, Case, catalogue
from tests.hostile.fuzz import fuzz
from tests.hostile.world import fuzz_bases
from tests.integration.platform import person_id
from tools.generate import generate_discharges, generate_population

CASES = catalogue()
KEY_CASES = {"key_mismatch", "null_key"}


def expected_types(topic: str) -> tuple:
    return tuple(EVENT_TYPES[p] for p in BY_NAME[topic].payloads)


def attempt(value: bytes | None, topic: str) -> BaseException | None:
    try:
        decode(value or b"", *expected_types(topic))
    except BaseException as exc:  # noqa: BLE001 - what escapes is the point
        return exc
    return None


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_the_base_of_every_case_is_a_valid_envelope(case: Case) -> None:
    error = attempt(case.base, case.topic)
    assert error is None, repr(error)
    assert case.value != case.base or case.name in KEY_CASES


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_decode_raises_only_contract_error(case: Case) -> None:
    error = attempt(case.value, case.topic)
    only_contract_error = error is None or isinstance(error, ContractError)
    assert only_contract_error, f"decode raised {type(error).__name__}: {mask_identity_numbers(str(error))[:200]}"


BREAKING = [c for c in CASES if c.name not in KEY_CASES and ACCEPTED not in c.expect]


@pytest.mark.parametrize("case", BREAKING, ids=[c.id for c in BREAKING])
def test_decode_refuses_the_case_and_names_the_problem(case: Case) -> None:
    error = attempt(case.value, case.topic)
    refused = isinstance(error, ContractError)
    assert refused, "decoded as valid" if error is None else f"decode raised {type(error).__name__}, not ContractError"
    assert isinstance(error, ContractError)
    said = mask_identity_numbers(f"{error.reason} [{error.field}]")
    named = re.search(case.hint, said, re.IGNORECASE) is not None
    assert named, f"the reason does not name the problem (/{case.hint}/): {said[:300]!r}"


def test_a_64_bit_version_is_valid() -> None:
    for case in (c for c in CASES if c.name == "version_3e9"):
        assert attempt(case.value, case.topic) is None, case.id


def test_fuzzed_records_raise_only_contract_error() -> None:
    providers, persons = generate_population(30, 4, seed=2, year=2026)
    bases = fuzz_bases(persons, providers, generate_discharges(8, seed=3, year=2026, providers=providers,
                                                               persons=persons), [person_id(600 + i) for i in range(6)])
    escaped: Counter[str] = Counter()
    for f in fuzz(bases, 1500, seed=7):
        error = attempt(f.value, f.topic)
        if error is not None and not isinstance(error, ContractError):
            escaped[f"{type(error).__name__} after {'+'.join(f.mutations)}"] += 1
    assert not escaped, f"{sum(escaped.values())} of 1,500 fuzzed records: {escaped.most_common(8)}"
