"""`tito --help` and every subcommand's `--help` explain themselves."""
from __future__ import annotations

import typer.main

from tito.cli import app


def all_commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if hasattr(cmd, "commands"):  # a command group
            yield from all_commands(cmd, prefix + (name,))


def test_every_command_has_help():
    from typer.testing import CliRunner

    runner = CliRunner()
    root = typer.main.get_command(app)
    top = runner.invoke(app, ["--help"])
    assert top.exit_code == 0 and "tito init DIR" in top.output
    paths = list(all_commands(root))
    assert len(paths) >= 14
    for path, cmd in paths:
        assert (cmd.help or "").strip(), f"tito {' '.join(path)} has no description"
        out = runner.invoke(app, [*path, "--help"], prog_name="tito")
        assert out.exit_code == 0, (path, out.output)
        assert "Usage: tito " + " ".join(path) in " ".join(out.output.split()), out.output
        for param in cmd.params:
            if getattr(param, "param_type_name", "") == "option" and param.name != "help":
                assert param.help, f"tito {' '.join(path)} {param.opts[0]} has no help text"
