"""The hospitals' client: `publish` (discharges, and the operators' enrollment commands, from JSONL
files, validated whole before anything is sent) and `statements` (follow a hospital's settlement
statements as a table)."""
