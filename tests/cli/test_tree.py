"""The command tree: every command documents an example; the top level catches every error once."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from edgepose.cli.main import EXIT_BAD_INPUT, EXIT_INTERNAL, cli


def _walk(cmd: click.Command, path: list[str]):
    yield path, cmd
    if isinstance(cmd, click.Group):
        for name, sub in sorted(cmd.commands.items()):
            yield from _walk(sub, [*path, name])


COMMANDS = list(_walk(cli, ["edgepose"]))


def test_the_tree_has_the_documented_commands():
    names = {" ".join(p) for p, _ in COMMANDS}
    for expected in ("edgepose data synth", "edgepose data check", "edgepose models", "edgepose train",
                     "edgepose eval", "edgepose export", "edgepose bench", "edgepose report", "edgepose run",
                     "edgepose doctor", "edgepose package", "edgepose infer", "edgepose verify"):
        assert expected in names


@pytest.mark.parametrize("path,cmd", COMMANDS, ids=[" ".join(p) for p, _ in COMMANDS])
def test_every_command_help_has_an_examples_block(path, cmd):
    ctx = click.Context(cmd, info_name=path[-1])
    text = cmd.get_help(ctx)
    assert "Example" in text, f"{' '.join(path)} --help shows no example"
    # the example lines name the command itself
    examples = text.split("Example", 1)[1]
    assert " ".join(path[1:]) in examples or len(path) == 1


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgepose", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=120)


def test_bad_input_is_one_line_exit_2(tmp_path):
    proc = _run("data", "check", str(tmp_path / "nowhere"))
    assert proc.returncode == EXIT_BAD_INPUT
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "nowhere" in lines[0]
    assert "Traceback" not in proc.stderr


def test_internal_error_is_one_line_exit_3_with_a_log(tmp_path, monkeypatch):
    """Anything unexpected: one line naming the step, the traceback in a log file, exit 3."""
    from click.testing import CliRunner

    import edgepose.diagnostics as doctor_mod

    def boom():
        raise RuntimeError("simulated failure")

    monkeypatch.setattr(doctor_mod, "collect", boom)
    monkeypatch.setenv("EDGEPOSE_LOG_DIR", str(tmp_path))
    monkeypatch.delenv("EDGEPOSE_DEBUG", raising=False)
    res = CliRunner().invoke(cli, ["doctor"])
    assert res.exit_code == EXIT_INTERNAL
    out = res.output.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("edgepose: internal error while doctor: RuntimeError: simulated failure")
    logs = list(tmp_path.glob("crash-*.log"))
    assert len(logs) == 1 and "Traceback" in logs[0].read_text() and str(logs[0]) in out[0]
    # --debug prints the traceback instead of writing a log
    res = CliRunner().invoke(cli, ["--debug", "doctor"])
    assert res.exit_code == EXIT_INTERNAL and "Traceback" in res.output
    assert len(list(tmp_path.glob("crash-*.log"))) == 1


def test_usage_errors_stay_click_usage_errors():
    proc = _run("export", "x.safetensors", "--precision", "int3", "--out", "o")
    assert proc.returncode == 2 and "Invalid value for '--precision'" in proc.stderr
    assert "fp32" in proc.stderr and "Traceback" not in proc.stderr
