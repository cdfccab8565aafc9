"""The package carries what it reads and the tree stays tidy: subsets and published leaderboards are package
data (one copy, inside ``sparkle_bench/``), every file of the package is listed as package data, nothing of
the package or the benchmarks imports the tests, and run outputs land in ignored folders.

The installed proof (wheel built, installed in a fresh virtualenv, the CI example run from outside the
checkout) is ``.ci/wheel_check.sh``, run by ``.ci/run``."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import sparkle_bench
from sparkle_bench.registry import UnknownNameError
from sparkle_bench.subsets import SUBSETS_DIR, apply_subset, subset_names
from sparkle_bench.tables import LEADERBOARDS, published_rows

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(sparkle_bench.__file__).resolve().parent


def test_top_level_data_folders_hold_only_readmes():
    """The human-facing folders point to the package copy; a second copy there could drift from it."""
    for folder in ("data_manifests", "leaderboards"):
        files = sorted(p.relative_to(ROOT / folder).as_posix() for p in (ROOT / folder).rglob("*") if p.is_file())
        assert files == ["README.md"], f"{folder}/ holds {files}: the data lives in sparkle_bench/data/"


def test_subsets_and_leaderboards_are_read_from_the_package(demo_root):
    assert Path(str(SUBSETS_DIR)).resolve() == PACKAGE / "data" / "subsets"
    assert Path(str(LEADERBOARDS)).resolve() == PACKAGE / "data" / "leaderboards"
    assert "smoke" in subset_names()
    from sparkle_bench.bench import load_sparkle

    assert len(apply_subset(load_sparkle(demo_root, name="demo"), "smoke").samples) == 8
    with pytest.raises(UnknownNameError, match="Did you mean smoke"):
        apply_subset(load_sparkle(demo_root, name="demo"), "smok")
    paper = published_rows("sparkle_bench")
    assert list(paper["model"]) == ["Kiwi-Edit", "Lucy-Edit-1.1", "Kiwi-Sparkle"] and set(paper["source"]) == {"paper"}
    assert paper.loc[2, "judge_bg_dynamics"] == 3.54
    assert set(published_rows("openve_bench")["bench"]) == {"openve"}
    with pytest.raises(FileNotFoundError, match="shipped: openve_bench, sparkle_bench"):
        published_rows("sparkle")


def test_every_file_of_the_package_is_package_data():
    """A file the package reads but ``[tool.setuptools.package-data]`` does not list is left out of the wheel:
    it works in a checkout and fails for everyone who installs the package."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["sparkle_bench"]
    listed = {p for pattern in globs for p in PACKAGE.glob(pattern)}
    data = {
        p
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    }
    assert not sorted(p.relative_to(PACKAGE).as_posix() for p in data - listed)
    assert {p.relative_to(PACKAGE).parts[0] for p in listed} >= {"data", "judge", "synth", "models"}


def _offences(path: Path) -> list[str]:
    """Imports of the test suite, and ``sys.path`` edits built from this file's location."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] == "tests"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "tests":
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call) and ast.unparse(node.func) in ("sys.path.insert", "sys.path.append"):
            if "__file__" in ast.unparse(node):
                found.append(ast.unparse(node))
    return [f"{path.relative_to(ROOT)}: {offence}" for offence in found]


def test_no_module_of_the_package_or_the_benchmarks_imports_the_tests():
    files = sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "benchmarks").glob("*.py"))
    assert len(files) > 100
    assert [offence for path in files for offence in _offences(path)] == []
    planted = ROOT / "benchmarks" / "_planted_offence_check.py"  # the scan finds what it looks for
    try:
        planted.write_text("import sys\nsys.path.insert(0, str(Path(__file__).parents[1]))\nfrom tests.x import y\n")
        assert len(_offences(planted)) == 2
    finally:
        planted.unlink()


def test_testing_package_imports_nothing_heavy():
    code = (
        "import sys, sparkle_bench.testing; "
        "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'diffusers', 'transformers') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_synthesis_outputs_land_in_ignored_folders():
    """``examples/synth*.toml`` and a config without ``out`` write under ``runs/``, which git ignores."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    from sparkle_bench.synth.config import DATA_DIR, load_config

    outs = [load_config(ROOT / "examples" / name).out for name in ("synth.toml", "synth-demo.toml")]
    assert all(out.is_relative_to(ROOT / "runs") for out in outs), outs
    default = tomllib.loads((DATA_DIR / "defaults.toml").read_text())["out"]
    outs.append(ROOT / "examples" / default)  # a config in examples/ that names no `out`
    for out in outs:
        probe = (out / "synth" / "run.lock").relative_to(ROOT)
        assert subprocess.run(["git", "check-ignore", "-q", "--no-index", str(probe)], cwd=ROOT).returncode == 0, probe
    tracked = subprocess.run(
        ["git", "ls-files", "synth-out", "synth-demo-out", "runs"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert tracked == ""
