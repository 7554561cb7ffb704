"""Hostile input for the platform's consumers: a catalogue of named bad records for every consumed
topic, a seeded fuzz mutator, the accounting that says what became of each record, and the run
that publishes them all against the five services as real processes.

Why here (`tests/hostile/`) and not under `tools/`: this is test input and test machinery, not
part of what is installed and shipped (`tools/` is a package of the product, in its image); it
builds on the integration harness (`tests/integration/harness.py`: namespaces, service processes,
lag waits), which lives under `tests/` too. Both the integration test
(`tests/integration/test_hostile_input.py`) and the script (`bench/hostile.py`, which puts the
repository root first on `sys.path` as `bench/pipeline.py` does) import it as `tests.hostile`.

    world.py       real valid envelopes of every topic, made by the platform's own pure code
    jsonbytes.py   edit a JSON tree by path, and write it with raw fragments (huge numbers, deep nesting)
    catalogue.py   named hostile records, each one valid envelope broken in exactly one way
    fuzz.py        deterministic (by seed) mutated copies of valid envelopes
    accounting.py  dead-lettered / rejected / accepted / unaccounted, per published record
    scenario.py    the whole run: services as processes, enrollment, publishing, drain, summary
"""
