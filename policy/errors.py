"""Errors of the policy package: a refused profile, a claim no profile prices, a malformed claim."""

from __future__ import annotations

from collections.abc import Sequence


class ProfileError(ValueError):
    """A policy profile (政策参数) that cannot be used, with the failing field path named.

    `problems` holds every `(path, reason)` found; `path` is the first one, e.g.
    ``catastrophic.bands[1].lower``. ``str(error)`` reads
    ``"catastrophic.bands[1].lower: bands must be in ascending order (profile 'x')"``.
    """

    def __init__(self, problems: Sequence[tuple[str, str]] | str, profile: str | None = None) -> None:
        if isinstance(problems, str):
            problems = [("", problems)]
        self.problems: tuple[tuple[str, str], ...] = tuple(problems)
        self.profile = profile
        self.path = self.problems[0][0] if self.problems else ""
        text = "; ".join(f"{path}: {reason}" if path else reason for path, reason in self.problems)
        if profile:
            text = f"{text} (profile {profile!r})"
        super().__init__(text)


class MissingOperatorInputs(ProfileError):
    """A profile that declares values the sources do not give (``!operator-input``) and was loaded
    without them. Lists every missing one, with why the profile cannot give it, and how to supply
    them; the services refuse to start with this message."""

    def __init__(self, missing: Sequence[tuple[str, str]], profile: str | None = None) -> None:
        super().__init__([(path, f"required operator input not supplied: {reason}") for path, reason in missing],
                         profile)
        self.missing = tuple(missing)
        by_reason: dict[str, list[str]] = {}
        for path, reason in missing:
            by_reason.setdefault(reason, []).append(path)
        listed = "; ".join(f"{', '.join(paths)} ({reason})" for reason, paths in by_reason.items())
        name = f"profile {profile!r}" if profile else "the profile"
        self.args = (f"{name} cannot be used until the operator supplies {len(missing)} value(s) the seeds do not "
                     f"give (they are silent on them, so none is invented): {listed}. Supply them in an overlay YAML "
                     "(--overlay FILE; POLICY_OVERLAY for the services) or with --set PATH=VALUE.",)

    def __str__(self) -> str:
        return str(self.args[0])


class NotPricedError(Exception):
    """The profile does not price this claim (no policy for the scheme, layer or hospital level).

    The settlement service rejects such a claim with reason code ``NO_POLICY``; it is never
    priced with made-up numbers.
    """

    reason_code = "NO_POLICY"

    def __init__(self, profile_id: str, detail: str) -> None:
        self.profile_id = profile_id
        self.detail = detail
        super().__init__(f"{profile_id}: {detail}")


class InvalidClaimError(ValueError):
    """A calculator input that is not a valid claim (negative amount, more than two decimals, ...).

    The settlement service maps it to reason code ``INVALID_CLAIM``.
    """

    reason_code = "INVALID_CLAIM"
