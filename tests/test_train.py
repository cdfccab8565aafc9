"""The trainer on a tiny Kiwi model (CPU, one process): it overfits two pairs, resumes exactly after
a kill, writes checkpoints the Kiwi loader generates from, trains only LoRA when told to, and skips
a corrupt video without losing a step (2 processes: ``test_train_multiprocess.py``)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from sparkle_bench.cli import main
from sparkle_bench.models.kiwi.folders import load_folder, save_folder
from sparkle_bench.models.kiwi.pipeline import Sampling
from sparkle_bench.models.kiwi.sources import open_kiwi
from sparkle_bench.records import read_jsonl
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.train.config import load_config
from sparkle_bench.train.data import PairDataset, read_pairs
from sparkle_bench.train.model import FlowMatchingObjective, Start, make_trainable

WIDE = dict(num_attention_heads=4, attention_head_dim=64, ffn_dim=256)  # wider than a 48x2x2 latent patch


@pytest.fixture(scope="module")
def start(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train-start")
    return save_folder(tiny_kiwi_model(root, pretrained_like=True, **WIDE), root / "kiwi")


@pytest.fixture(scope="module")
def pairs(demo_root, tmp_path_factory) -> Path:
    """Two demo pairs (source -> its living-background edit) in the Sparkle training layout."""
    root = tmp_path_factory.mktemp("pairs")
    rows = []
    for theme in ("time", "season"):
        source = sorted((demo_root / "source_videos" / theme).glob("*.mp4"))[0]
        target = next((demo_root / "reference" / theme).rglob(f"{source.stem}_edited.mp4"))
        rows.append(
            {
                "prompt": f"Replace the background: {theme}.",
                "src_video": str(source),
                "tgt_video": str(target),
                "task": source.stem,
            }
        )
    (root / "prompts").mkdir()
    with open(root / "prompts" / "demo_train.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["prompt", "src_video", "tgt_video", "task"])
        writer.writeheader()
        writer.writerows(rows)
    return root


def config_file(tmp_path: Path, start: Path, pairs: Path, **extra) -> Path:
    settings = dict(
        start=str(start),
        roots=[str(pairs)],
        themes=["demo"],
        num_frames=5,
        pixel_budget=4096,
        workers=0,
        qwen_lora_rank=4,
        lr=1e-3,
        lr_schedule="warmup",
        warmup_steps=1,
        grad_accum=1,
        mixed_precision="no",
        weights="fp32",
        gradient_checkpointing=False,
        out=str(tmp_path / "run"),
        log_with=[],
        steps=6,
        save_every=3,
    )
    settings.update(extra)
    lines = [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    path = tmp_path / "train.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def fixed_draw_loss(model, samples) -> float:
    objective = FlowMatchingObjective(model)
    with torch.no_grad():
        return float(
            np.mean([float(objective(s, torch.Generator().manual_seed(1000 + k))) for s in samples for k in range(8)])
        )


def losses(run: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_jsonl(run / "losses.jsonl")}


def test_tiny_model_overfits_two_pairs(start, pairs, tmp_path):
    config = config_file(
        tmp_path, start, pairs, steps=100, save_every=100, log_with=["tensorboard"], max_grad_norm=0.0
    )  # unclipped, so 100 steps at lr 1e-3 overfit
    assert main(["train", str(config)]) == 0
    run = tmp_path / "run"
    checkpoint = run / "checkpoints" / "step-000100"
    assert (checkpoint / "model.safetensors").is_file() and json.loads((checkpoint / "kiwi.json").read_text())[
        "step"
    ] == 100
    assert list((run / "logs").rglob("events.out.tfevents*"))  # TensorBoard got the metrics
    samples = [PairDataset(read_pairs([str(pairs)], ["demo"]), 5, 4096, 32, "truncate")[i] for i in range(2)]
    base, tuned = load_folder(start), open_kiwi(str(checkpoint), torch.float32)
    before, after = fixed_draw_loss(base, samples), fixed_draw_loss(tuned, samples)
    assert after * 5 <= before, (before, after)

    def psnr(model, sample) -> float:
        """Against the target as the (random) VAE renders it: what a perfect denoiser would output."""
        video = model.generate(sample["prompt"], sample["source"], None, Sampling(steps=8)).astype(float)
        with torch.no_grad():
            reachable = tuned.decode(tuned.encode(sample["target"])).astype(float)
        return 10 * np.log10(255**2 / np.mean((video - reachable) ** 2))

    assert np.mean([psnr(tuned, s) for s in samples]) > np.mean([psnr(base, s) for s in samples]) + 1.0


def test_kill_after_a_checkpoint_then_resume_continues_the_same_losses(start, pairs, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir(), killed.mkdir()
    assert main(["train", str(config_file(straight, start, pairs, cache_dir=str(tmp_path / "cache")))]) == 0
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 2  # one entry per pair, reused after
    command = [sys.executable, "-m", "sparkle_bench.cli", "train", str(config_file(killed, start, pairs))]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not (killed / "run/checkpoints/step-000003/kiwi.json").is_file():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (killed / "run/checkpoints/step-000003/kiwi.json").is_file()
    assert not (killed / "run/checkpoints/step-000006").exists(), "the kill must land before the end"
    assert main(["train", str(config_file(killed, start, pairs))]) == 0
    first, second = losses(straight / "run"), losses(killed / "run")  # cached latents give the same losses
    assert [r["step"] for r in read_jsonl(killed / "run/losses.jsonl")] == [1, 2, 3, 4, 5, 6]
    assert [second[s] for s in (4, 5, 6)] == pytest.approx([first[s] for s in (4, 5, 6)], rel=1e-5, abs=1e-7)


def test_a_trained_checkpoint_runs_through_the_eval_model_option(start, pairs, tmp_path, demo_root):
    config = config_file(tmp_path, start, pairs, steps=1, save_every=1)  # the eval hook: test_train_multiprocess.py
    assert main(["train", str(config)]) == 0
    checkpoint = tmp_path / "run/checkpoints/step-000001"
    keys = load_file(checkpoint / "model.safetensors")
    assert "dit.blocks.0.self_attn.q.weight" in keys and "mllm.connetor.2.weight" in keys  # DiffSynth layout
    assert (
        main(
            [
                "infer",
                "--bench",
                "demo",
                "--ids",
                "Demo_time_000",
                "--model",
                f"kiwi-sparkle:{checkpoint}",
                "--runs-dir",
                str(tmp_path / "runs"),
                "--model-option",
                "pixel_budget=4096",
                "--model-option",
                "steps=2",
                "--model-option",
                "max_frames=5",
            ]
        )
        == 0
    )
    assert len(list((tmp_path / "runs").rglob("Demo_time_000_edited.mp4"))) == 1


def test_lora_only_training_leaves_every_other_weight_untouched(start, pairs, tmp_path):
    config = load_config(
        config_file(
            tmp_path, start, pairs, dit="lora", dit_lora_rank=4, queries=False, connector=False, source_embedder=False
        ),
        {},
    )
    model = load_folder(start)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = make_trainable(model, config, Start(qwen_lora=None))
    assert names and all("lora_" in n for n in names)
    objective = FlowMatchingObjective(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    sample = PairDataset(read_pairs([str(pairs)], ["demo"]), 5, 4096, 32, "truncate")[0]
    for step in range(3):
        objective(sample, torch.Generator().manual_seed(step)).backward()
        optimizer.step()
        optimizer.zero_grad()
    after = model.state_dict()
    frozen = {k.replace(".base_layer.", "."): v for k, v in after.items() if "lora_" not in k}
    assert frozen.keys() == before.keys()
    assert all(torch.equal(frozen[k], before[k]) for k in before)
    assert any(not torch.all(v == 0) for k, v in after.items() if "lora_B" in k)  # the LoRA did learn


def test_a_corrupt_training_video_is_skipped_and_counted(start, pairs, tmp_path, capsys):
    bad = tmp_path / "bad"
    (bad / "prompts").mkdir(parents=True)
    rows = (pairs / "prompts" / "demo_train.csv").read_text().splitlines()
    (bad / "broken.mp4").write_bytes(b"\x00" * 2048)
    rows.append(f"Replace it.,{rows[1].split(',')[1]},{bad / 'broken.mp4'},Broken_pair")
    (bad / "prompts" / "demo_train.csv").write_text("\n".join(rows) + "\n")
    assert main(["train", str(config_file(tmp_path, start, bad, steps=4, save_every=4))]) == 0
    records = list(read_jsonl(tmp_path / "run/losses.jsonl"))
    assert [r["step"] for r in records] == [1, 2, 3, 4] and records[-1]["skipped"] == 1
    assert capsys.readouterr().err.count("skipped Broken_pair") == 1


def test_train_data_builds_the_training_layout(demo_root, tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    prompts = []
    for source in sorted((demo_root / "source_videos" / "time").glob("*.mp4"))[:2]:
        target = next((demo_root / "reference").rglob(f"{source.stem}_edited.mp4"))
        os.symlink(source, pairs / f"{source.stem}_source.mp4")
        os.symlink(target, pairs / f"{source.stem}_edited.mp4")
        prompts.append({"id": source.stem, "prompt": f"Make {source.stem} alive."})
    (pairs / "Broken_source.mp4").write_bytes(b"\x00" * 100)
    (pairs / "Broken_edited.mp4").write_bytes(b"\x00" * 100)
    prompts.append({"id": "Broken", "prompt": "x"})
    (tmp_path / "prompts.jsonl").write_text("".join(json.dumps(p) + "\n" for p in prompts))
    out = tmp_path / "dataset"
    assert (
        main(
            [
                "train-data",
                str(pairs),
                "--out",
                str(out),
                "--theme",
                "mine",
                "--prompts",
                str(tmp_path / "prompts.jsonl"),
                "--strict",
            ]
        )
        == 3
    )
    found = read_pairs([str(out)], ["mine"])
    assert [p.id for p in found] == [p["id"] for p in prompts[:2]] and found[0].prompt == prompts[0]["prompt"]
    assert found[0].source.is_file() and found[0].target.is_file()
    meta = [json.loads(line) for line in (out / "prompts/mine_train_metadata.jsonl").read_text().splitlines()]
    assert meta[0]["metadata"]["edit_type"] == "mine"


def test_train_data_strict_counts_a_source_without_its_edit(demo_root, tmp_path):
    pairs = tmp_path / "pairs"
    pairs.mkdir()
    source = sorted((demo_root / "source_videos" / "time").glob("*.mp4"))[0]
    os.symlink(source, pairs / "Good_source.mp4")
    os.symlink(next((demo_root / "reference").rglob(f"{source.stem}_edited.mp4")), pairs / "Good_edited.mp4")
    (pairs / "Good.txt").write_text("Make it alive.")
    command = ["train-data", str(pairs), "--out", str(tmp_path / "dataset"), "--theme", "mine", "--strict"]
    assert main(command) == 0
    os.symlink(source, pairs / "Orphan_source.mp4")
    (pairs / "Orphan.txt").write_text("No edit exists.")
    assert main(command) == 3


def test_roots_may_hold_different_themes(pairs, tmp_path):
    other = tmp_path / "other"
    (other / "prompts").mkdir(parents=True)
    rows = (pairs / "prompts" / "demo_train.csv").read_text().splitlines()
    (other / "prompts" / "extra_train.csv").write_text("\n".join(rows[:2]) + "\n")
    found = read_pairs([str(pairs), str(other)], ["demo", "extra"])
    assert len(found) == len(rows) - 1 + 1
    with pytest.raises(FileNotFoundError, match="theme\\(s\\) missing under"):
        read_pairs([str(pairs), str(other)], ["demo", "missing"])
