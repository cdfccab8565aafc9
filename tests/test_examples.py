"""The shipped CI example stays in step with the command line: every sparkle-bench call in it parses."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from sparkle_bench.cli import build_parser

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "github-actions.yml"


def test_github_actions_example_commands_parse():
    yaml = pytest.importorskip("yaml")
    steps = yaml.safe_load(EXAMPLE.read_text())["jobs"]["gate"]["steps"]
    lines = [line for step in steps for line in step.get("run", "").splitlines() if "sparkle-bench " in line]
    calls = [shlex.split(line[line.index("sparkle-bench ") :].split(">>")[0]) for line in lines]
    assert [c[1] for c in calls] == ["download", "eval", "regress", "regress", "leaderboard", "report"]
    parser = build_parser()
    for call in calls:
        parser.parse_args(call[1:])  # an unknown flag or a missing argument exits here
    eval_args = parser.parse_args(calls[1][1:])
    assert eval_args.subset == "smoke" and eval_args.strict and eval_args.model.startswith("command:")
