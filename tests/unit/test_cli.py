"""The command tree itself (no stack needed): every command has help and documents its exit codes,
the README's commands are commands of the tree with options they take, and the entry points are
one program."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest

from tools import cli
from tools.stack import services

ROOT = Path(__file__).resolve().parents[2]


def resolve(words: list[str]) -> tuple[tuple[str, ...], click.Command, list[str]]:
    """The command that `words` (after `./medsettle`) name, and the rest of the words."""
    command: click.Command = cli.cli
    path: list[str] = []
    while isinstance(command, click.Group) and words and words[0] in command.commands:
        path.append(words[0])
        command = command.commands[words.pop(0)]
    return tuple(path), command, words


def readme_commands() -> list[list[str]]:
    """Every `./medsettle ...` line of the README's code blocks, as words, without the comment."""
    text = (ROOT / "README.md").read_text()
    found = []
    for block in re.findall(r"```(?:bash)?\n(.*?)```", text, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("./medsettle"):
                found.append(shlex.split(line)[1:])
    return found


def test_every_command_has_help_and_its_exit_codes() -> None:
    for words in cli.commands():
        _, command, rest = resolve(list(words))
        assert not rest and command.help, words
        assert words == ("test",) or "Exit codes:" in (command.epilog or ""), words


@pytest.mark.parametrize("words", readme_commands(), ids=" ".join)
def test_the_readme_commands_are_commands_with_the_options_they_take(words: list[str]) -> None:
    path, command, rest = resolve(list(words))
    assert (path and not isinstance(command, click.Group)) or rest == ["--help"], f"{words}: not a command"
    options = {name for p in command.params for name in p.opts if isinstance(p, click.Option)}
    options |= {"--help", "-h"}
    used = {w.split("=", 1)[0] for w in rest if w.startswith("-")}
    assert path == ("test",) or used <= options, f"{words}: {used - options} not options of {' '.join(path)}"


def test_the_readme_names_every_top_level_command() -> None:
    text = (ROOT / "README.md").read_text()
    for name in cli.cli.commands:
        assert f"./medsettle {name}" in text, name


def test_the_readme_shows_every_kind_a_hospital_or_operator_publishes() -> None:
    shown = {tuple(words[:2]) for words in readme_commands()}
    kinds = set(cli.publish.commands)  # type: ignore[attr-defined]
    assert {"discharges", "corrections", "reversals", "commands"} <= kinds
    for kind in kinds:
        assert ("publish", kind) in shown, kind


def test_help_is_printed_in_process_and_nothing_runs(capsys: pytest.CaptureFixture[str]) -> None:
    for words in cli.commands():
        assert cli.main([*words, "--help"]) == 0, words
        assert capsys.readouterr().out.startswith(" ".join(("Usage: medsettle", *words)))


def test_the_service_names_are_those_of_the_processes() -> None:
    assert cli.SERVICES == services.PROCESSES == (*services.SERVICES, "console")
    from tools.operator.replay import SERVICE_INPUTS

    assert tuple(SERVICE_INPUTS) == cli.REPLAYED


def test_one_entry_point() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["scripts"] == {"medsettle": "tools.cli:main"}
    assert "click" in " ".join(project["dependencies"])
    script = (ROOT / "medsettle").read_text()
    assert 'exec "$ROOT/.venv/bin/medsettle" "$@"' in script and "python -m tools" not in script


def test_a_group_without_its_command_shows_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["operator"]) == 2
    assert "Commands:" in capsys.readouterr().err
