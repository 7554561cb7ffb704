"""The three layers' pure calculators (no I/O, no contracts): basic insurance (`basic`),
critical-illness insurance (`catastrophic`) and medical assistance (`assistance`). Each takes a
claim, the policy profile and the person's year state, and returns its result and the year state
after the claim. `policy.one_stop` chains them; `policy.decisions` wraps them in the contracts."""
