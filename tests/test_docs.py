"""Every command in the README and docs/ stays true: a renamed flag or subcommand fails here, not for a reader.

Fenced ``bash`` blocks of README.md, docs/*.md and metrics/*.md are split into commands (``\\``
continuations joined, comments dropped, ``&&``/``||``/``;``/``|`` split, redirections dropped). Then:

- every sparkle-bench command (``sparkle-bench ...``, ``python -m sparkle_bench.cli ...``,
  ``torchrun/accelerate launch ... -m sparkle_bench.cli ...``, also after ``ray job submit ... --``) is parsed by
  the real parser, with abbreviations off, so the doc's exact flags must exist;
- ``python benchmarks/X.py`` must exist and each ``--flag`` given must appear in its ``--help``; ``python -m
  pytest PATH`` must name an existing file; ``python -c CODE`` must compile;
- a block preceded by ``<!-- docs-test: run -->`` is also run, command by command, in one working folder shared
  by all pages, on the demo bench (``SPARKLE_BENCH_HOME`` from the ``demo_root`` fixture); each command exits 0,
  or N when its comment says ``exits N``. Only blocks that need no GPU, network or real data carry the mark;
- any other command must be of a kind known not to run (``pip``, ``export``, ...): a new kind fails until the
  test learns it. Rule and examples for writers: docs/development.md, "How the docs are tested".
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import io
import re
import runpy
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sparkle_bench.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "metrics").glob("*.md"))]
RUN_MARK = "<!-- docs-test: run -->"
FENCE = re.compile(r"^```(\w*)\s*$")
SEPARATORS = {"&&", "||", ";", "|", "&"}
REDIRECTIONS = {">", ">>", "<", ">&", "&>"}
LAUNCHERS = {"python", "python3", "torchrun", "accelerate"}
# Commands the docs may show that this test never runs (installs, environment, other tools).
NOT_RUN = {"pip", "pip3", "export", "ruff", ".ci/run", "cd", "git", "conda", "uv", "vllm", "huggingface-cli", "hf"}
EXPECTED_EXIT = re.compile(r"\bexits? (\d+)\b")
# Pages other engineers are writing; their links may dangle in this branch until the lead merges them.
PENDING: set[str] = set()


@dataclass(frozen=True)
class Command:
    path: Path
    line: int
    words: tuple[str, ...]
    comment: str
    run: bool

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def text(self) -> str:
        return shlex.join(self.words)


def split_comment(line: str) -> tuple[str, str]:
    """``(code, comment)``: a ``#`` outside quotes at the start of a word begins a comment, as in bash."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :].strip()
    return line, ""


def blocks(path: Path, language: str = "bash") -> list[tuple[int, list[str], bool]]:
    """``(first line number, lines, marked to run)`` of each fenced block in ``language``."""
    found, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match and match.group(1):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            previous = next((lines[j].strip() for j in range(i - 1, -1, -1) if lines[j].strip()), "")
            if match.group(1) == language:
                found.append((i + 2, lines[i + 1 : end], previous == RUN_MARK))
            i = end
        i += 1
    return found


def split_commands(lines: list[str], first_line: int) -> list[tuple[int, list[str], str]]:
    """``(line, words, comment)`` per command: continuations joined, operators split, redirections dropped."""
    out, pending, start, comments = [], "", first_line, []
    for number, raw in enumerate(lines, first_line):
        code, comment = split_comment(raw)
        comments.append(comment)
        if not pending:
            start = number
        if code.rstrip().endswith("\\"):
            pending += code.rstrip()[:-1] + " "
            continue
        logical, pending = pending + code, ""
        lexer = shlex.shlex(logical, posix=True, punctuation_chars=True)
        lexer.whitespace_split, lexer.commenters = True, ""
        words, skip = [], False
        for token in [*lexer, ";"]:
            if skip:
                skip = False
            elif token in REDIRECTIONS:
                skip = True
            elif token in SEPARATORS:
                if words:
                    out.append((start, words, " ".join(c for c in comments if c)))
                words = []
            else:
                words.append(token)
        comments = []
    return out


def commands(path: Path) -> list[Command]:
    return [
        Command(path, line, tuple(words), comment, run)
        for first, lines, run in blocks(path)
        for line, words, comment in split_commands(lines, first)
    ]


def cli_argv(words: tuple[str, ...]) -> list[str] | None:
    """The argv a sparkle-bench command gives the parser, or None for any other command."""
    if words[0] == "sparkle-bench":
        return list(words[1:])
    if words[0] in LAUNCHERS:
        for i in range(len(words) - 1):
            if words[i : i + 2] == ("-m", "sparkle_bench.cli"):
                return list(words[i + 2 :])
    if words[0] == "ray" and "--" in words:
        return cli_argv(words[words.index("--") + 1 :])
    return None


@functools.cache
def strict_parser() -> argparse.ArgumentParser:
    """The CLI's parser with prefix matching off everywhere: a doc's ``--strict`` must not pass as an
    abbreviation of a renamed ``--strict-mode``."""

    def walk(parser: argparse.ArgumentParser) -> None:
        parser.allow_abbrev = False
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    walk(sub)

    parser = build_parser()
    walk(parser)
    return parser


def parse_error(argv: list[str]) -> str | None:
    """None when ``argv`` parses, else argparse's complaint."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            strict_parser().parse_args(argv)
    except SystemExit as exc:
        if exc.code:
            return err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else f"exit {exc.code}"
    return None


@functools.cache
def script_help(script: Path) -> str:
    """A benchmark's ``--help``, run in this process (its imports are mostly loaded already)."""
    out, argv, path = io.StringIO(), sys.argv, list(sys.path)
    sys.argv = [str(script), "--help"]
    try:
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
            runpy.run_path(str(script), run_name="__main__")
    finally:
        sys.argv, sys.path[:] = argv, path
    assert exited.value.code in (0, None), f"{script.name} --help exited {exited.value.code}"
    return out.getvalue()


def python_problem(cmd: Command) -> str | None:
    words = cmd.words
    if words[1:3] == ("-m", "pytest"):
        missing = [w for w in words[3:] if not w.startswith("-") and not (ROOT / w.split("::")[0]).exists()]
        return f"no {', '.join(missing)}" if missing else None
    if words[1] == "-c":
        try:
            compile(words[2], cmd.where, "exec")
        except SyntaxError as exc:
            return f"does not compile: {exc}"
        return None
    if words[1].endswith(".py"):
        script = ROOT / words[1]
        if not script.is_file():
            return f"no file {words[1]}"
        if "argparse" not in script.read_text():  # no --help to ask: running it would run it
            return None
        help_text = script_help(script)
        unknown = [
            f
            for f in (w.split("=")[0] for w in words[2:] if w.startswith("--"))
            if not re.search(rf"{re.escape(f)}\b", help_text)
        ]
        return f"{', '.join(unknown)} not in its --help" if unknown else None
    return "a python command this test does not know how to check"


def problem(cmd: Command) -> str | None:
    """What is wrong with a documented command, or None."""
    argv = cli_argv(cmd.words)
    if argv is not None:
        error = parse_error(argv)
        return f"does not parse: {error}" if error else None
    if cmd.words[0] in LAUNCHERS - {"torchrun", "accelerate"}:
        return python_problem(cmd)
    if cmd.words[0] not in NOT_RUN | {"ray", "accelerate"}:
        return "unknown kind of command (teach tests/test_docs.py, or use another)"
    return None


DOC_IDS = [str(p.relative_to(ROOT)) for p in DOCS]


@pytest.mark.parametrize("path", DOCS, ids=DOC_IDS)
def test_every_command_parses(path):
    problems = [f"{c.where}: `{c.text}`: {p}" for c in commands(path) if (p := problem(c))]
    assert not problems, "\n".join(problems)


def run_one(cmd: Command, capsys) -> None:
    from sparkle_bench.cli import main

    argv = cli_argv(cmd.words)
    expected = int(m.group(1)) if (m := EXPECTED_EXIT.search(cmd.comment)) else 0
    if argv is not None:
        bench = argv[argv.index("--bench") + 1] if "--bench" in argv[:-1] else "demo"
        assert bench == "demo", f"{cmd.where}: `{cmd.text}` is marked to run but uses --bench {bench}, not demo"
        argv = [a for word in argv for a in (sorted(glob.glob(word)) or [word] if "*" in word else [word])]
        try:
            code = main(argv) or 0
        except SystemExit as exc:
            code = exc.code or 0
        output = capsys.readouterr()
        output = output.out + output.err
    elif cmd.words[:2] in (("python", "-c"), ("python3", "-c")):
        done = subprocess.run([sys.executable, *cmd.words[1:]], capture_output=True, text=True)
        code, output = done.returncode, done.stdout + done.stderr
    else:
        pytest.fail(f"{cmd.where}: `{cmd.text}` is in a block marked to run, but only sparkle-bench and python -c run")
    tail = "\n".join(output.strip().splitlines()[-15:])
    assert code == expected, f"{cmd.where}: `{cmd.text}` exited {code}, expected {expected}:\n{tail}"


@pytest.fixture(scope="session")
def docs_workspace(demo_root, tmp_path_factory) -> Path:
    """One working folder for every page's runs, so a run made on one page is reused (resumed) by the next."""
    return tmp_path_factory.mktemp("docs-run")


RUNNABLE = [p for p in DOCS if any(run for _, _, run in blocks(p))]


@pytest.mark.parametrize("path", RUNNABLE, ids=[str(p.relative_to(ROOT)) for p in RUNNABLE])
def test_marked_blocks_run_on_the_demo_bench(path, docs_workspace, monkeypatch, capsys):
    monkeypatch.chdir(docs_workspace)
    # Score in this process: a worker pool's start costs more than the demo bench's 12 tiny samples.
    monkeypatch.setattr("sparkle_bench.runner.default_workers", lambda: 1)
    for cmd in (c for c in commands(path) if c.run):
        run_one(cmd, capsys)


@pytest.mark.parametrize("path", DOCS, ids=DOC_IDS)
def test_python_examples_compile(path):
    for first, lines, _ in blocks(path, "python"):
        compile("\n".join(lines), f"{path.relative_to(ROOT)}:{first}", "exec")


@pytest.mark.parametrize("path", DOCS, ids=DOC_IDS)
def test_relative_links_resolve(path):
    missing = []
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if "://" in target:
            continue
        resolved = (path.parent / target).resolve()
        relative = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)
        if not resolved.exists() and relative not in PENDING:
            missing.append(target)
    assert not missing, f"{path.relative_to(ROOT)} links to missing files: {missing}"


def test_readme_opens_with_the_two_commands_and_stays_short():
    lines = (ROOT / "README.md").read_text().splitlines()
    first = 'pip install -e ".[dev]" && sparkle-bench eval --bench demo --model still-composite'
    assert lines[:4] == ["```bash", first, "python -m pytest -q", "```"]
    assert len(lines) <= 200, f"README.md has {len(lines)} lines; move detail into docs/"


def test_extraction_finds_the_commands_it_must_check():
    readme = commands(ROOT / "README.md")
    assert [c.words for c in readme[:3]] == [
        ("pip", "install", "-e", ".[dev]"),
        ("sparkle-bench", "eval", "--bench", "demo", "--model", "still-composite"),
        ("python", "-m", "pytest", "-q"),
    ]
    every = [c for p in DOCS for c in commands(p)]
    assert sum(cli_argv(c.words) is not None for c in every) >= 80
    assert sum(c.run for c in every) >= 15


def test_splitting_follows_bash():
    block = [
        'sparkle-bench eval --model "command:cp {source} {output}" # a comment with a quote \'',
        "accelerate launch --num_processes 2 --machine_rank $RANK \\",
        "    -m sparkle_bench.cli train cfg.toml  # exits 1",
        "test -d data || sparkle-bench download --bench sparkle --root data && echo '# not a comment' >> log.txt",
    ]
    got = split_commands(block, 10)
    assert got == [
        (10, ["sparkle-bench", "eval", "--model", "command:cp {source} {output}"], "a comment with a quote '"),
        (
            11,
            [
                "accelerate",
                "launch",
                "--num_processes",
                "2",
                "--machine_rank",
                "$RANK",
                "-m",
                "sparkle_bench.cli",
                "train",
                "cfg.toml",
            ],
            "exits 1",
        ),
        (13, ["test", "-d", "data"], ""),
        (13, ["sparkle-bench", "download", "--bench", "sparkle", "--root", "data"], ""),
        (13, ["echo", "# not a comment"], ""),
    ]
    assert cli_argv(tuple(got[1][1])) == ["train", "cfg.toml"]
    ray = ("ray", "job", "submit", "--", "sparkle-bench", "synth", "status", "x.toml")
    assert cli_argv(ray) == ["synth", "status", "x.toml"]


def test_the_parse_check_rejects_renamed_and_abbreviated_flags():
    assert parse_error(["eval", "--bench", "demo", "--model", "identity", "--strict"]) is None
    assert "unrecognized arguments: --wrok-height" in parse_error(["eval", "--model", "x", "--wrok-height", "96"])
    assert parse_error(["eval", "--model", "identity", "--stri"]) is not None  # prefix matching is off
    assert "invalid choice" in parse_error(["evaluate", "--model", "identity"])
    renamed = Command(ROOT / "README.md", 1, ("sparkle-bench", "regress", "runs/x", "--base", "b.json"), "", False)
    assert "does not parse" in problem(renamed) and "--baseline" in problem(renamed)  # the required flag it lacks
    assert "unknown kind" in problem(Command(ROOT / "README.md", 1, ("make", "docs"), "", False))
    assert "--no-such-flag not in its --help" in problem(
        Command(ROOT / "README.md", 1, ("python", "benchmarks/gate_noise.py", "--no-such-flag"), "", False)
    )
