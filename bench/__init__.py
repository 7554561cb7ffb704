"""Benchmarks; each prints its figures (see docs/architecture.md, "Performance")."""
