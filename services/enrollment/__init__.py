"""The enrollment service (参保登记): registry of insured persons and designated providers.

`identity` checks resident identity numbers (GB 11643), `domain` decides commands against the
registry state (pure), `eligibility` answers "entitled to benefits on this day?" from a snapshot.
"""
