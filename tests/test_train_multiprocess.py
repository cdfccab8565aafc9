"""The trainer as a real 2-process job on CPU (``torchrun``, gloo): one log, one checkpoint, both
processes' data positions in it, the evaluation hook over the whole subset in the main process;
FSDP2 sharding its state over the two processes and resuming to the loss an uninterrupted DDP run
reaches; a resume with another process count continuing from the first unread pair."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch.distributed.checkpoint as dcp

from sparkle_bench.cli import main
from sparkle_bench.records import read_jsonl
from sparkle_bench.train.data import restart_points

from .test_train import config_file, losses, pairs, start  # noqa: F401 (fixtures)


def torchrun(config: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", None)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "sparkle_bench.cli",
        "train",
        str(config),
        *flags,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def ddp_run(start, pairs, tmp_path_factory, demo_root) -> Path:  # noqa: F811
    """2 steps of a 2-process DDP job, evaluated at the end by the hook."""
    root = tmp_path_factory.mktemp("ddp")
    torchrun(
        config_file(
            root,
            start,
            pairs,
            steps=2,
            save_every=2,
            eval_bench="demo",
            eval_subset="smoke",
            eval_options=["pixel_budget=4096", "steps=2", "max_frames=5"],
        )
    )
    return root / "run"


def test_torchrun_runs_one_two_process_job(ddp_run):
    records = list(read_jsonl(ddp_run / "losses.jsonl"))
    assert [r["step"] for r in records] == [1, 2]  # one log: each step once
    assert {r["processes"] for r in records} == {2}
    assert sorted(p.name for p in (ddp_run / "checkpoints").iterdir()) == ["step-000002"]
    saved = json.loads((ddp_run / "checkpoints/step-000002/state/progress.json").read_text())
    assert saved["processes"] == 2 and len(saved["positions"]) == 2 and all(p == 2 for p in saved["positions"])


def test_the_eval_hook_scores_the_whole_subset_in_one_process(ddp_run):
    summary = pd.read_csv(ddp_run / "eval/step-000002/summary.csv").set_index("theme")
    assert summary.loc["MACRO", "n_scored"] == summary.loc["MACRO", "n_total"] > 0
    assert not list((ddp_run / "eval/step-000002").glob("*shard*"))


def test_another_process_count_resumes_where_the_data_was_left(ddp_run, start, pairs, tmp_path, capsys):  # noqa: F811
    assert restart_points(2, [0, 0], [3, 2]) == [3, 2]  # kind 0: items 0, 2 and 1 taken; kind 1: items 0 and 1
    out = tmp_path / "resumed"
    shutil.copytree(ddp_run, out, ignore=shutil.ignore_patterns("eval"))
    config = config_file(tmp_path, start, pairs, steps=3, save_every=3, out=str(out))
    assert main(["train", str(config)]) == 0  # 2 processes saved it, 1 resumes it
    assert "was written by 2 process(es), this job has 1" in " ".join(capsys.readouterr().err.split())
    records = list(read_jsonl(out / "losses.jsonl"))
    assert [(r["step"], r["processes"]) for r in records] == [(1, 2), (2, 2), (3, 1)]
    saved = json.loads((out / "checkpoints/step-000003/state/progress.json").read_text())
    assert saved["processes"] == 1 and saved["starts"] == [4] and saved["positions"] == [1]  # 2 x 2 videos read before


def test_fsdp2_shards_its_state_and_resumes_to_the_ddp_losses(ddp_run, start, pairs, tmp_path):  # noqa: F811
    config = config_file(tmp_path, start, pairs, steps=1, save_every=1, engine="fsdp2")
    torchrun(config)
    state = tmp_path / "run/checkpoints/step-000001/state/trainable"
    assert {p.name for p in state.glob("*.distcp")} == {"__0_0.distcp", "__1_0.distcp"}  # each process wrote its shard
    metadata = dcp.FileSystemReader(str(state)).read_metadata().state_dict_metadata
    queries = metadata["model.kiwi.encoder.video_queries"]
    assert len(queries.chunks) == 2  # the parameter is held in two shards
    assert not any("qwen" in k and "lora" not in k for k in metadata)  # frozen weights are not saved
    torchrun(config, "--steps", "2")  # resumes from step 1
    fsdp, ddp = losses(tmp_path / "run"), losses(ddp_run)
    assert sorted(fsdp) == [1, 2]
    assert [fsdp[s] for s in (1, 2)] == pytest.approx([ddp[s] for s in (1, 2)], rel=1e-4)
