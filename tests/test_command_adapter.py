"""The ``command`` adapter: a model in its own environment, one process per sample; its failures
and timeouts are recorded like any other, and a run that generates nothing fails."""

from __future__ import annotations

import sys
import textwrap

import pytest

from sparkle_bench.cli import main
from sparkle_bench.records import read_jsonl
from sparkle_bench.video import probe

SCRIPT = textwrap.dedent("""
    import sys, time
    source, prompt, output, mode = sys.argv[1:5]
    if mode == "fail":
        sys.exit("model crashed: CUDA out of memory")
    if mode == "sleep":
        time.sleep(30)
    from sparkle_bench.video import read_frames, write_video
    frames = read_frames(source)[:9]
    write_video(output, 255 - frames, 15)  # an 'edit' that depends on the source
    assert prompt.startswith("Replace the background")
""")


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "edit.py"
    path.write_text(SCRIPT)
    return path


def run(tmp_path, script, mode: str, *extra: str) -> int:
    template = f"{sys.executable} {script} {{source}} {{prompt}} {{output}} {mode}"
    return main(
        [
            "infer",
            "--bench",
            "demo",
            "--limit",
            "2",
            "--model",
            f"command:{template}",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--run-name",
            mode,
            *extra,
        ]
    )


def test_a_command_that_succeeds_writes_canonical_outputs(demo_root, tmp_path, script):
    assert run(tmp_path, script, "ok") == 0
    outputs = sorted((tmp_path / "runs/ok/outputs").rglob("*_edited.mp4"))
    assert len(outputs) == 2 and probe(outputs[0]).num_frames == 9
    assert not list((tmp_path / "runs/ok/outputs").rglob(".*tmp*"))  # temporary files are gone
    assert run(tmp_path, script, "ok") == 0  # resume: nothing re-run
    assert [r["status"] for r in read_jsonl(tmp_path / "runs/ok/inference.jsonl")] == ["ok", "ok"]


def test_a_failing_command_fails_the_run_with_its_last_words(demo_root, tmp_path, script, capsys):
    assert run(tmp_path, script, "fail") == 1  # every sample tried failed
    err = " ".join(capsys.readouterr().err.split())
    assert "first cause" in err and "CUDA out of memory" in err
    records = list(read_jsonl(tmp_path / "runs/fail/inference.jsonl"))
    assert [r["status"] for r in records] == ["failed", "failed"] and "exited with 1" in records[0]["reason"]


def test_a_slow_command_times_out_per_sample(demo_root, tmp_path, script):
    assert run(tmp_path, script, "sleep", "--model-option", "timeout=1") == 1
    records = list(read_jsonl(tmp_path / "runs/sleep/inference.jsonl"))
    assert all("timed out after 1 s" in r["reason"] for r in records)


def test_templates_are_checked_before_anything_runs(demo_root, tmp_path, capsys):
    assert main(["infer", "--model", "command:edit {source} {out}", "--runs-dir", str(tmp_path)]) == 2
    assert "unknown field(s) out" in capsys.readouterr().err


def test_a_command_run_is_named_by_the_hash_of_its_template(demo_root):
    from sparkle_bench.bench import open_bench
    from sparkle_bench.runs import default_run_name

    bench = open_bench("demo")
    first = default_run_name(bench, "command:python edit.py {source} {prompt} {output}")
    assert first.startswith("demo-command-") and len(first) == len("demo-command-") + 8
    assert first != default_run_name(bench, "command:python other.py {source} {prompt} {output}")
