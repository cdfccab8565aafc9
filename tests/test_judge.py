"""The VLM judge against a real OpenAI-compatible server on loopback: scores, caps, re-asks, faults,
resume without repeat requests, cost controls, and no API key in any written file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sparkle_bench.bench import open_bench
from sparkle_bench.cli import main
from sparkle_bench.tables import run_records
from sparkle_bench.testing.judge_server import JudgeServer, scores

SECRET = "sk-test-5ec7e7-never-write-me"
FAST = ["--backoff", "0.01", "--retries", "2"]


@pytest.fixture()
def samples(demo_root):
    return open_bench("demo").samples


@pytest.fixture()
def server_factory():
    servers = []

    def make(script, **kwargs):
        servers.append(JudgeServer(script, **kwargs))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def judge(server, tmp_path, *extra):
    return main(
        [
            "judge",
            "--bench",
            "demo",
            "--model",
            "reference",
            "--runs-dir",
            str(tmp_path / "runs"),
            "--base-url",
            server.url,
            "--judge-cache",
            str(tmp_path / "cache"),
            *FAST,
            *extra,
        ]
    )


def records(tmp_path):
    return run_records(tmp_path / "runs" / "demo-reference", "judge*.jsonl")


def summary(tmp_path):
    return pd.read_csv(tmp_path / "runs" / "demo-reference" / "summary.csv").set_index("theme")


def test_scores_caps_reasks_and_counts(samples, tmp_path, server_factory):
    s = samples
    server = server_factory(
        {
            s[0].prompt: [scores(2, 5, 4, 3, 1, 5)],
            s[1].prompt: ["Sure, here are my scores:\n" + scores(4, 4, 4, 4, 4, 4), scores(4, 4, 3, 4, 5, 4)],
            s[2].prompt: [scores(6, 4, 4, 4, 4, 4)],
            s[3].prompt: [scores(5, 5, 5, 5, 5)],  # a line short
        }
    )
    assert judge(server, tmp_path) == 0
    got = records(tmp_path)

    assert got[s[0].id]["status"] == "ok"
    assert got[s[0].id]["scores_raw"] == [2, 5, 4, 3, 1, 5]
    assert got[s[0].id]["judge"] == {
        "judge_instruction": 2,
        "judge_visual_quality": 2,
        "judge_fg_integrity": 2,
        "judge_fg_motion": 2,
        "judge_bg_dynamics": 1,
        "judge_bg_quality": 2,
        "judge_overall": pytest.approx(11 / 6),
    }
    # re-asked once, with the unreadable answer and the reason in the conversation
    assert [e["turns"] for e in server.requests_for(s[1].prompt)] == [1, 3]
    assert got[s[1].id]["scores_raw"] == [4, 4, 3, 4, 5, 4] and len(got[s[1].id]["answers"]) == 2
    assert got[s[1].id]["judge"]["judge_bg_dynamics"] == 4  # capped at Instruction Compliance
    # out of range / missing line: 1 ask + 2 re-asks, then a failure that keeps every raw answer
    for sample, why in ((s[2], "outside 1-5"), (s[3], "no score for Background Visual Quality")):
        assert len(server.requests_for(sample.prompt)) == 3
        assert got[sample.id]["status"] == "failed" and why in got[sample.id]["reason"]
        assert len(got[sample.id]["answers"]) == 3
    assert {(e["temperature"], e["seed"], e["videos"]) for e in server.log} == {(0.0, 42, 2)}

    table = summary(tmp_path)
    assert table.loc["MACRO", ["n_total", "n_judged", "n_judge_failed", "n_judge_missing"]].tolist() == [12, 10, 2, 0]
    good_overall = (5 + 4 + 4 + 4 + 3 + 4) / 6
    theme0 = [x for x in s if x.theme == s[0].theme]
    expected = [
        11 / 6 if x.id == s[0].id else 23 / 6 if x.id == s[1].id else good_overall
        for x in theme0
        if x.id not in (s[2].id, s[3].id)
    ]
    assert table.loc[s[0].theme, "judge_overall"] == pytest.approx(sum(expected) / len(expected), abs=1e-4)

    # floor policy: failures count as 1 on every dimension
    assert main(["table", str(tmp_path / "runs" / "demo-reference"), "--missing-policy", "floor"]) == 0
    floor = summary(tmp_path)
    failed_in_theme0 = [x for x in theme0 if x.id in (s[2].id, s[3].id)]
    expected_floor = (sum(expected) + len(failed_in_theme0)) / len(theme0)
    assert floor.loc[s[0].theme, "judge_overall"] == pytest.approx(expected_floor, abs=1e-4)
    assert set(floor["judge_missing_policy"]) == {"floor"}

    # a re-run sends nothing: every answer, readable or not, is cached
    before = len(server.log)
    assert judge(server, tmp_path) == 0
    assert len(server.log) == before


def test_rate_limits_server_errors_slow_replies_and_bad_bodies(samples, tmp_path, server_factory):
    s = samples
    server = server_factory(
        {
            s[0].prompt: [("status", 429, {"Retry-After": "1"}), "good"],
            s[1].prompt: [("status", 500, {})],
            s[2].prompt: [("slow", 2.5, "good"), "good"],
            s[3].prompt: [("body", "this is not json"), "good"],
            s[4].prompt: [("status", 503, {"Retry-After": "0"}), ("status", 502, {}), "good"],
        }
    )
    assert judge(server, tmp_path, "--timeout", "1") == 0
    got = records(tmp_path)
    limited = server.requests_for(s[0].prompt)
    assert [e["status"] for e in limited] == [429, 200]
    assert limited[1]["t"] - limited[0]["t"] >= 1.0  # Retry-After honoured
    assert [e["status"] for e in server.requests_for(s[1].prompt)] == [500, 500, 500]  # 1 + 2 retries, no more
    assert got[s[1].id]["status"] == "failed" and "HTTP 500" in got[s[1].id]["reason"]
    assert len(server.requests_for(s[2].prompt)) == 2 and got[s[2].id]["status"] == "ok"  # timed out once
    assert len(server.requests_for(s[3].prompt)) == 2 and got[s[3].id]["status"] == "ok"
    assert len(server.requests_for(s[4].prompt)) == 3 and got[s[4].id]["status"] == "ok"
    assert sum(r["status"] == "ok" for r in got.values()) == 11

    # transport failures are not cached: a re-run asks again for that sample only
    before = len(server.log)
    assert judge(server, tmp_path) == 0
    assert {e["instruction"] for e in server.log[before:]} == {s[1].prompt}


def _run_judge_subprocess(server, tmp_path, env_home, cache=None):
    env = {**os.environ, "SPARKLE_JUDGE_API_KEY": SECRET, "SPARKLE_BENCH_HOME": env_home}
    cmd = [
        sys.executable,
        "-m",
        "sparkle_bench.cli",
        "judge",
        "--bench",
        "demo",
        "--model",
        "reference",
        "--runs-dir",
        str(tmp_path / "runs"),
        "--base-url",
        server.url,
        "--judge-cache",
        str(cache or tmp_path / "cache"),
        "--concurrency",
        "2",
        *FAST,
    ]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_kill_and_resume_repeats_no_request(samples, tmp_path, server_factory, sig):
    server = server_factory({}, default=("slow", 0.4, "good"), api_key=SECRET)
    proc = _run_judge_subprocess(server, tmp_path, os.environ["SPARKLE_BENCH_HOME"])
    deadline = time.monotonic() + 60
    while sum(e["status"] == 200 for e in server.log) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(sig)
    proc.wait(timeout=60)
    judged_before = len(records(tmp_path))
    assert 0 < judged_before < 12
    os.environ["SPARKLE_JUDGE_API_KEY"] = SECRET
    try:
        assert judge(server, tmp_path, "--concurrency", "2") == 0
    finally:
        del os.environ["SPARKLE_JUDGE_API_KEY"]
    per_sample = [len(server.requests_for(x.prompt)) for x in samples]
    repeats = sum(n - 1 for n in per_sample)
    if sig == signal.SIGINT:  # Ctrl-C: requests in flight finish and are kept
        assert per_sample == [1] * 12
    else:  # SIGKILL: only answers in flight at the kill can be lost, at most one per worker
        assert min(per_sample) == 1 and repeats <= 2
    assert all(r["status"] == "ok" for r in records(tmp_path).values()) and len(records(tmp_path)) == 12
    _assert_secret_nowhere(tmp_path)


def test_two_processes_sharing_a_cache_never_ask_twice(samples, tmp_path, server_factory):
    server = server_factory({}, default=("slow", 0.2, "good"), api_key=SECRET)
    first = _run_judge_subprocess(server, tmp_path / "a", os.environ["SPARKLE_BENCH_HOME"], cache=tmp_path / "cache")
    second = _run_judge_subprocess(server, tmp_path / "b", os.environ["SPARKLE_BENCH_HOME"], cache=tmp_path / "cache")
    assert first.wait(timeout=120) == 0 and second.wait(timeout=120) == 0
    assert [len(server.requests_for(x.prompt)) for x in samples] == [1] * 12
    for run in ("a", "b"):
        got = run_records(tmp_path / run / "runs" / "demo-reference", "judge*.jsonl")
        assert len(got) == 12 and all(r["status"] == "ok" for r in got.values())


def _assert_secret_nowhere(root: Path):
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_api_key_is_sent_but_never_written(samples, tmp_path, server_factory, monkeypatch):
    echo = f"Instruction Compliance: 4 (key {SECRET})"
    server = server_factory({samples[0].prompt: [echo]}, api_key=SECRET)
    monkeypatch.setenv("SPARKLE_JUDGE_API_KEY", SECRET)
    assert judge(server, tmp_path) == 0
    assert {e["auth"] for e in server.log} == {f"Bearer {SECRET}"}
    answers = records(tmp_path)[samples[0].id]["answers"]
    assert answers and all("<redacted>" in a for a in answers)
    monkeypatch.delenv("SPARKLE_JUDGE_API_KEY")
    flag_run = subprocess.run(
        [
            sys.executable,
            "-m",
            "sparkle_bench.cli",
            "judge",
            "--bench",
            "demo",
            "--model",
            "reference",
            "--ids",
            samples[1].id,
            "--runs-dir",
            str(tmp_path / "flag"),
            "--base-url",
            server.url,
            "--judge-cache",
            str(tmp_path / "flag-cache"),
            f"--api-key={SECRET}",
            *FAST,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert flag_run.returncode == 0, flag_run.stderr
    assert SECRET not in flag_run.stdout + flag_run.stderr
    assert "--api-key=<redacted>" in (tmp_path / "flag" / "demo-reference" / "provenance.json").read_text()
    _assert_secret_nowhere(tmp_path)


def test_refused_key_stops_the_run(samples, tmp_path, server_factory, monkeypatch, capsys):
    server = server_factory({}, api_key=SECRET)
    monkeypatch.setenv("SPARKLE_JUDGE_API_KEY", "sk-wrong")
    assert judge(server, tmp_path, "--concurrency", "2") == 2
    assert len(server.log) <= 2
    err = capsys.readouterr().err
    assert "HTTP 401" in err and "sk-wrong" not in err


def test_dry_run_and_max_requests(samples, tmp_path, server_factory, capsys):
    server = server_factory({})
    assert judge(server, tmp_path, "--dry-run") == 0
    assert server.log == []
    assert "12 requests to send" in " ".join(capsys.readouterr().err.split())

    assert judge(server, tmp_path, "--max-requests", "5") == 0
    assert len(server.log) == 5
    table = summary(tmp_path)
    assert table.loc["MACRO", ["n_judged", "n_judge_missing"]].tolist() == [5, 7]
    assert judge(server, tmp_path, "--dry-run") == 0
    assert "7 requests to send (5 samples already in the cache" in " ".join(capsys.readouterr().err.split())

    assert judge(server, tmp_path) == 0
    assert sorted(len(server.requests_for(x.prompt)) for x in samples) == [1] * 12


def test_missing_and_unreadable_edits_are_not_sent(samples, tmp_path, server_factory, demo_root):
    outputs = tmp_path / "outputs"
    for i, sample in enumerate(samples[:3]):
        target = outputs / sample.output_relpath
        target.parent.mkdir(parents=True, exist_ok=True)
        if i == 0:
            target.write_bytes(b"")  # zero bytes
        elif i == 1:
            target.symlink_to(demo_root / "reference" / sample.output_relpath)
    server = server_factory({})
    assert (
        main(
            [
                "judge",
                "--bench",
                "demo",
                "--model",
                f"precomputed:{outputs}",
                "--run-name",
                "pre",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--base-url",
                server.url,
                "--judge-cache",
                str(tmp_path / "cache"),
                *FAST,
            ]
        )
        == 0
    )
    got = run_records(tmp_path / "runs" / "pre", "judge*.jsonl")
    assert got[samples[0].id]["status"] == "failed" and "not sent" in got[samples[0].id]["reason"]
    assert got[samples[1].id]["status"] == "ok"
    assert sum(r["status"] == "missing" for r in got.values()) == 10
    assert len(server.log) == 1


def test_rubric_from_official_script_is_parsed_not_run(samples, tmp_path, server_factory):
    marker = tmp_path / "executed"
    script = tmp_path / "official_eval.py"
    script.write_text(
        f"open({str(marker)!r}, 'w').write('ran')\n"
        "raise SystemExit('this script must never run')\n"
        "def build(instruction):\n"
        "    note = 'short unrelated string'\n"
        "    return f'''Judge this background edit.\n"
        "Instruction: {instruction}\n"
        "Rate Instruction Compliance, Overall Visual Quality, Foreground Integrity,\n"
        "Foreground Motion Consistency, Background Dynamics and Background Visual Quality from 1 to 5,\n"
        "each on its own line as 'Name: score', followed by a short reason.'''\n"
    )
    server = server_factory({}, default=scores(3, 3, 3, 3, 3, 3) + "\nReason: fine.")
    assert judge(server, tmp_path, "--rubric-from", str(script), "--ids", samples[0].id) == 0
    assert not marker.exists()
    record = records(tmp_path)[samples[0].id]
    assert record["status"] == "ok" and record["rubric_version"].startswith("custom-")
    assert server.log[0]["instruction"] == samples[0].prompt
    # the built-in wording is another rubric version: new requests, never the custom answers
    assert judge(server, tmp_path, "--ids", samples[0].id) == 0
    assert len(server.log) >= 2 and records(tmp_path)[samples[0].id]["rubric_version"] == "sparkle-v1"


def test_agreement_orients_lower_is_better_metrics(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    with open(run / "samples.jsonl", "w") as m, open(run / "judge.jsonl", "w") as j:
        for i in range(8):
            theme = "a" if i < 4 else "b"
            m.write(
                json.dumps(
                    {
                        "id": f"s{i}",
                        "theme": theme,
                        "status": "ok",
                        "metrics": {"bg_dynamics": 0.1 * i, "fg_motion": 1.0 - 0.1 * i},
                    }
                )
                + "\n"
            )
            j.write(
                json.dumps(
                    {
                        "id": f"s{i}",
                        "theme": theme,
                        "status": "ok",
                        "judge": {"judge_bg_dynamics": 1 + i % 4, "judge_fg_motion": 1 + i % 4},
                    }
                )
                + "\n"
            )
    assert main(["agreement", str(run)]) == 0
    table = pd.read_csv(run / "agreement.csv")
    rows = table.set_index(["theme", "judge", "metric"])
    assert rows.loc[("a", "judge_bg_dynamics", "bg_dynamics"), "spearman_rho"] == pytest.approx(1.0)
    assert rows.loc[("b", "judge_fg_motion", "fg_motion"), "spearman_rho"] == pytest.approx(1.0)
    assert rows.loc[("ALL", "judge_bg_dynamics", "bg_dynamics"), "n"] == 8


@pytest.mark.parametrize("family", ["qwen2.5-vl", "qwen3-vl"])
def test_local_tiny_qwen_judge_records_its_garbage_as_a_failure(samples, tmp_path, family):
    pytest.importorskip("transformers")
    from sparkle_bench.testing.tiny_models import tiny_qwen3_vl, tiny_qwen25_vl

    model = (tiny_qwen25_vl if family == "qwen2.5-vl" else tiny_qwen3_vl)(tmp_path / "tiny-qwen")
    ids = f"{samples[0].id},{samples[5].id}"
    args = [
        "judge",
        "--bench",
        "demo",
        "--model",
        "reference",
        "--ids",
        ids,
        "--runs-dir",
        str(tmp_path / "runs"),
        "--judge",
        "local",
        "--judge-model",
        str(model),
        "--frames",
        "4",
        "--max-pixels",
        str(112 * 112),
        "--judge-cache",
        str(tmp_path / "cache"),
    ]
    assert main(args) == 0
    got = records(tmp_path)
    assert sorted(got) == sorted(ids.split(","))
    for record in got.values():
        assert record["status"] == "failed" and record["backend"] == "local"
        assert record["reason"].startswith("unreadable answer after 3 tries")
        assert len(record["answers"]) == 3 and record["requests"] == 3
    assert main(args) == 0  # judged (and failed for good): nothing is asked again
    assert all(r["requests"] == 3 for r in records(tmp_path).values())
    assert summary(tmp_path).loc["MACRO", ["n_judged", "n_judge_failed"]].tolist() == [0, 2]
    # the judge's worker threads loaded the model once: transformers' process-wide patch of weight
    # tying during from_pretrained was not left in place by two overlapping loads
    from transformers.modeling_utils import PreTrainedModel

    assert PreTrainedModel.tie_weights.__name__ == "tie_weights"


def test_eval_with_judge_gives_one_table_and_an_agreement(samples, tmp_path, server_factory):
    server = server_factory({x.prompt: [scores(5, 4, 4, 4, 1 + i % 5, 4)] for i, x in enumerate(samples)})
    assert (
        main(
            [
                "eval",
                "--bench",
                "demo",
                "--model",
                "reference",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--judge",
                "openai",
                "--base-url",
                server.url,
                "--judge-cache",
                str(tmp_path / "cache"),
                *FAST,
            ]
        )
        == 0
    )
    table = summary(tmp_path)
    assert table.loc["MACRO", ["n_scored", "n_judged"]].tolist() == [12, 12]
    assert {"bg_dynamics", "judge_bg_dynamics", "judge_overall"} <= set(table.columns)
    assert main(["agreement", str(tmp_path / "runs" / "demo-reference")]) == 0
    rows = pd.read_csv(tmp_path / "runs" / "demo-reference" / "agreement.csv").set_index(["theme", "judge", "metric"])
    assert rows.loc[("ALL", "judge_bg_dynamics", "bg_dynamics"), "n"] == 12
    assert -1 <= rows.loc[("ALL", "judge_bg_dynamics", "bg_dynamics"), "spearman_rho"] <= 1


def test_openve_bench_is_judged_on_its_three_dimensions(samples, tmp_path, server_factory, demo_root):
    root, outputs = tmp_path / "openve", tmp_path / "openve-outputs"
    (root / "videos").mkdir(parents=True)
    outputs.mkdir()
    rows = ["edited_type,prompt,original_video"]
    for x in samples[:3]:
        (root / "videos" / f"{x.id}.mp4").symlink_to(x.source)
        (outputs / f"{x.id}_edited.mp4").symlink_to(demo_root / "reference" / x.output_relpath)
        rows.append(f'background_change,"{x.prompt}",videos/{x.id}.mp4')
    (root / "bench.csv").write_text("\n".join(rows) + "\n")
    titles = ("Instruction Compliance", "Consistency & Detail Fidelity", "Visual Quality & Stability")
    server = server_factory({}, default=scores(3, 5, 2, rubric_titles=titles))
    assert (
        main(
            [
                "judge",
                "--bench",
                str(root / "bench.csv"),
                "--model",
                f"precomputed:{outputs}",
                "--run-name",
                "ove",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--base-url",
                server.url,
                "--judge-cache",
                str(tmp_path / "cache"),
                *FAST,
            ]
        )
        == 0
    )
    assert all(
        "Consistency & Detail Fidelity: <1-5>" in e["prompt"] and "Background Dynamics" not in e["prompt"]
        for e in server.log
    )
    table = pd.read_csv(tmp_path / "runs" / "ove" / "summary.csv").set_index("theme")
    assert table.loc[
        "background_change", ["judge_instruction", "judge_consistency", "judge_visual_quality"]
    ].tolist() == [3, 3, 2]
    assert table.loc["MACRO", "judge_overall"] == pytest.approx(8 / 3, abs=1e-4)
    assert table.loc["MACRO", "n_judged"] == 3
