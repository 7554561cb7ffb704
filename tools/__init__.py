"""Command-line tools: the local stack (`python -m tools.stack`), data generator, CLIs."""
