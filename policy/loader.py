"""Load and validate policy profiles from ``policies/<id>.yaml`` (repository root).

YAML is read so that no number ever passes through a float: a YAML float scalar (``0.40``) is
constructed as ``Decimal("0.40")`` from its text, integers stay exact `int`. Duplicate keys are
refused. Operator overrides are deep-merged into the YAML data before validation:

* a mapping merges into a mapping (keys compared as text, so ``{"3": ...}`` meets YAML's ``3:``);
* a mapping with integer keys merges into a list element-wise
  (``{"catastrophic": {"bands": {1: {"lower": "20000"}}}}`` sets only ``bands[1].lower``);
* anything else replaces the value. Floats are refused in overrides.

A value the sources do not give may be declared as a **required operator input**:
``annual_cap: !operator-input "seed-rules.md 1.2: no employee cap in the seeds"``. Loading the
profile without supplying every such value raises :class:`MissingOperatorInputs`, which lists all
of them; the operator supplies them in an overlay YAML (`read_overlay`, the same shape as the
profile, merged as overrides) or as assignments ``PATH=VALUE`` (`parse_assignment`, e.g.
``scheme_variants.employee.basic.deductible.3=800.00``), whose values are YAML read exactly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from policy.errors import MissingOperatorInputs, ProfileError
from policy.profile import FieldProblem, PolicyProfile

POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"


class _ExactLoader(yaml.SafeLoader):
    """SafeLoader that builds YAML floats as exact Decimals and refuses duplicate keys."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            key = str(self.construct_object(key_node, deep=deep))
            if key in seen:
                raise ProfileError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1}")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal:
    text = str(loader.construct_scalar(node)).replace("_", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ProfileError(f"number {text!r} at line {node.start_mark.line + 1} is not a decimal") from None
    if not value.is_finite():
        raise ProfileError(f"number {text!r} at line {node.start_mark.line + 1} must be finite")
    return value


_ExactLoader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)


class OperatorInput:
    """A profile value the sources do not give: ``!operator-input "why"`` in YAML. It must be
    replaced by an override before the profile validates."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason or "not in the sources"

    def __repr__(self) -> str:
        return f"OperatorInput({self.reason!r})"


OPERATOR_INPUT_TAG = "!operator-input"


def _construct_operator_input(loader: yaml.SafeLoader, node: yaml.Node) -> OperatorInput:
    if not isinstance(node, yaml.ScalarNode):
        raise ProfileError(f"{OPERATOR_INPUT_TAG} at line {node.start_mark.line + 1} takes a reason (a text), "
                           "not a mapping or a list")
    return OperatorInput(str(loader.construct_scalar(node)).strip())


_ExactLoader.add_constructor(OPERATOR_INPUT_TAG, _construct_operator_input)


def available_profiles() -> tuple[str, ...]:
    """Ids of the profiles shipped in ``policies/``."""
    return tuple(sorted(p.stem for p in POLICIES_DIR.glob("*.yaml")))


def read_yaml(text: str, origin: str = "<string>") -> dict[str, Any]:
    """Parse profile YAML exactly (no floats)."""
    try:
        data = yaml.load(text, Loader=_ExactLoader)
    except ProfileError as exc:
        raise ProfileError(exc.problems, origin) from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"not valid YAML: {exc}", origin) from None
    if not isinstance(data, dict):
        raise ProfileError("a profile is a YAML mapping", origin)
    return data


Overrides = Mapping[Any, Any] | Sequence[Mapping[Any, Any]] | None
"""One mapping of overrides, or several applied in order (an overlay, then assignments, ...)."""


def load_profile(profile_id_or_path: str | Path, overrides: Overrides = None) -> PolicyProfile:
    """Load, override and validate a profile; raise :class:`ProfileError` naming the field
    (:class:`MissingOperatorInputs` listing every required operator input not supplied).

    `profile_id_or_path` is a shipped id (``"demo-county"``, see :func:`available_profiles`) or a
    path to a YAML file. `overrides` supplies operator inputs (e.g. band bounds the source lost).
    """
    path, expected_id = _locate(profile_id_or_path)
    data = read_yaml(path.read_text(encoding="utf-8"), str(path))
    if expected_id is not None and data.get("id") != expected_id:
        raise ProfileError([("id", f"{data.get('id')!r} does not match the file name {expected_id!r}")], expected_id)
    return parse_profile(data, overrides, origin=str(data.get("id") or path))


def parse_profile(data: Mapping[str, Any], overrides: Overrides = None, *, origin: str = "") -> PolicyProfile:
    """Validate already-parsed profile data (plus overrides, applied in order)."""
    applied: list[str] = []
    merged = dict(data)
    for layer in ([overrides] if isinstance(overrides, Mapping) else list(overrides or ())):
        if not layer:
            continue
        if "overrides_applied" in layer:
            raise ProfileError([("overrides_applied", "is set by the loader, not by an override")], origin)
        merged = _merge(merged, layer, "", applied, origin)
    merged.pop("overrides_applied", None)
    missing = _operator_inputs(merged, "")
    if missing:
        raise MissingOperatorInputs(missing, origin or str(data.get("id", "")))
    try:
        profile = PolicyProfile.model_validate(_text_keys(merged))
    except ValidationError as exc:
        raise ProfileError(_problems(exc), origin or str(data.get("id", ""))) from None
    return profile.model_copy(update={"overrides_applied": tuple(dict.fromkeys(applied))}) if applied else profile


def _operator_inputs(value: Any, path: str) -> list[tuple[str, str]]:
    """(path, reason) of every `!operator-input` still in the data."""
    if isinstance(value, OperatorInput):
        return [(path, value.reason)]
    found: list[tuple[str, str]] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            found += _operator_inputs(item, _join(path, str(key)))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found += _operator_inputs(item, _join(path, index))
    return found


def read_overlay(path: str | Path) -> dict[str, Any]:
    """An overlay YAML: operator inputs in the shape of the profile, read exactly (no floats),
    merged into the profile as overrides."""
    file = Path(path)
    if not file.is_file():
        raise ProfileError(f"no overlay file at {file}")
    data = read_yaml(file.read_text(encoding="utf-8"), str(file))
    if "id" in data or "version" in data:
        raise ProfileError([("id" if "id" in data else "version", "an overlay supplies operator inputs; it cannot "
                                                                  "change the profile's id or version")], str(file))
    return data


_PATH = re.compile(r"^[A-Za-z0-9_-]+(\[\d+\])*(\.[A-Za-z0-9_-]+(\[\d+\])*)*$")


def parse_assignment(text: str) -> dict[Any, Any]:
    """``PATH=VALUE`` as an override: ``catastrophic.bands[1].lower=20000.00`` becomes
    ``{"catastrophic": {"bands": {1: {"lower": Decimal("20000.00")}}}}``. VALUE is YAML read exactly
    (``0.45`` is a Decimal, ``[A, B]`` a list, ``null`` None)."""
    path, sep, raw = text.partition("=")
    path = path.strip()
    if not sep or not _PATH.match(path):
        raise ProfileError(f"{text!r} is not PATH=VALUE (e.g. catastrophic.threshold=8000.00, "
                           "catastrophic.bands[0].ratio=0.55)")
    try:
        value = yaml.load(raw.strip() or "null", Loader=_ExactLoader)
    except (ProfileError, yaml.YAMLError) as exc:
        raise ProfileError(f"{text!r}: the value is not valid YAML ({exc})") from None
    return nest(path_parts(path), value)


def path_parts(path: str) -> list[str | int]:
    """``a.b[1].c`` → ``["a", "b", 1, "c"]`` (a relative ``[0].ratio`` → ``[0, "ratio"]``)."""
    parts: list[str | int] = []
    for chunk in path.split("."):
        name, _, rest = chunk.partition("[")
        if name:
            parts.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            parts.append(int(index))
            rest = rest.lstrip("[")
    return parts


def nest(parts: Sequence[str | int], value: Any) -> dict[Any, Any]:
    """The override that sets the value at `parts`."""
    node: Any = value
    for part in reversed(parts):
        node = {part: node}
    return node  # type: ignore[no-any-return]


def operator_overrides(overlay: str | Path | None = None, assignments: Sequence[str] = ()) -> list[Mapping[Any, Any]]:
    """The overrides an operator gives: an overlay file, then `PATH=VALUE` assignments (in order)."""
    layers: list[Mapping[Any, Any]] = []
    if overlay:
        layers.append(read_overlay(overlay))
    layers += [parse_assignment(a) for a in assignments]
    return layers


def _locate(ref: str | Path) -> tuple[Path, str | None]:
    text = str(ref)
    if isinstance(ref, Path) or "/" in text or text.endswith((".yaml", ".yml")):
        path = Path(ref)
        if not path.is_file():
            raise ProfileError(f"no profile file at {path}")
        return path, None
    path = POLICIES_DIR / f"{text}.yaml"
    if not path.is_file():
        raise ProfileError(f"unknown profile {text!r}; available: {', '.join(available_profiles())}")
    return path, text


def _join(prefix: str, part: str | int) -> str:
    if isinstance(part, int):
        return f"{prefix}[{part}]"
    return f"{prefix}.{part}" if prefix else str(part)


def _merge(base: Any, override: Any, path: str, applied: list[str], origin: str) -> Any:
    if isinstance(override, Mapping):
        if isinstance(base, list) and override and all(isinstance(k, int) and not isinstance(k, bool) for k in override):
            result = list(base)
            for index, value in override.items():
                if not 0 <= index < len(result):
                    raise ProfileError([(_join(path, index), f"no such element (the list has {len(result)})")], origin)
                result[index] = _merge(result[index], value, _join(path, index), applied, origin)
            return result
        if isinstance(base, dict):
            merged = dict(base)
            for key, value in override.items():
                existing = next((k for k in merged if str(k) == str(key)), key)
                merged[existing] = _merge(merged.get(existing), value, _join(path, str(key)), applied, origin)
            return merged
    _refuse_floats(override, path, origin)
    applied.append(path)
    return override


def _text_keys(value: Any) -> Any:
    """Mapping keys as text (YAML reads `3:` as an int), so an int in an error path is a list index."""
    if isinstance(value, Mapping):
        return {str(k): _text_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_text_keys(v) for v in value]
    return value


def _refuse_floats(value: Any, path: str, origin: str) -> None:
    if isinstance(value, float):
        raise ProfileError([(path, f"float {value!r} in overrides; pass money and ratios as strings or Decimal")], origin)
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_floats(item, _join(path, key if isinstance(key, int) else str(key)), origin)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _refuse_floats(item, _join(path, index), origin)


def _problems(exc: ValidationError) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            if part == "[key]":
                path += " (key)"
            else:
                path = _join(path, part)
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, FieldProblem):
            for part in path_parts(cause.path):
                path = _join(path, part)
            reason = cause.reason
        elif isinstance(cause, Exception):
            reason = str(cause)
        elif err["type"] == "missing":
            reason = "required field is missing"
        else:
            reason = err["msg"]
        problems.append((path, reason))
    return problems


