"""Benchmarks: each prints its figures (`python bench/<name>.py --help`)."""
