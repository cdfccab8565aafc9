"""The memory estimate: exact parameter bytes per engine, a clear refusal when a device is too small,
and its training-time part (gradients + optimizer + activations) against the resident-memory peak
of real training steps of a mid-size model on CPU (latents precomputed, as with the cache),
measured in a fresh process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.train.config import TrainConfig
from sparkle_bench.train.memory import GB, DoesNotFit, check_fit, estimate
from sparkle_bench.train.model import Start, make_trainable

ROOT = Path(__file__).resolve().parents[1]
MEASURE = r"""
import json, sys, tempfile
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, sys.argv[1])
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model
from sparkle_bench.train.config import TrainConfig
from sparkle_bench.train.memory import estimate, rss_peak_during
from sparkle_bench.train.model import Start, batch_loss, prepare_training

torch.set_num_threads(1)
config = TrainConfig(weights="fp32", mixed_precision="no", num_frames=9, pixel_budget=256 * 448, qwen_lora_rank=4,
                     gradient_checkpointing=False, grad_accum=1, cache_dir="latents")
model = tiny_kiwi_model(Path(tempfile.mkdtemp()), num_attention_heads=8, attention_head_dim=64, ffn_dim=2048,
                        num_layers=4)
training = prepare_training(config, model, Start(qwen_lora=None))
rng = np.random.default_rng(0)
frames = rng.integers(0, 255, (9, 256, 448, 3), dtype=np.uint8)
sample = {"prompt": "Replace the background.", "source": frames, "target": 255 - frames}
with torch.no_grad():  # as the cache gives them
    latents = [{"source": model.encode(frames), "target": model.encode(255 - frames)}]

def steps():
    for step in range(2):
        batch_loss(training.objective, [sample], config, step, 0, 0, latents).backward()
        training.optimizer.step()
        training.optimizer.zero_grad()

before, peak = rss_peak_during(steps)
found = estimate(model, config, 1)
print(json.dumps({"measured": peak - before, "training": found.gradients + found.optimizer + found.activations,
                  "activations": found.activations, "states": found.gradients + found.optimizer}))
"""


def test_parameter_bytes_per_engine_and_the_refusal(tmp_path):
    model = tiny_kiwi_model(tmp_path)
    config = TrainConfig(weights="fp32", mixed_precision="no", qwen_lora_rank=4, num_frames=5, pixel_budget=4096)
    make_trainable(model, config, Start(qwen_lora=None))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    frozen = sum(p.numel() * 4 for p in model.parameters() if not p.requires_grad)
    one = estimate(model, config, 1)
    assert (one.weights, one.gradients, one.optimizer) == (frozen + 4 * trainable, 4 * trainable, 12 * trainable)
    ddp = estimate(model, config, 8)
    assert ddp.gradients == 8 * trainable  # DDP's buckets: a second copy
    config.engine = "fsdp2"
    fsdp = estimate(model, config, 8)
    assert fsdp.optimizer == 12 * trainable / 8 and fsdp.gradients == 4 * trainable / 8
    config.engine = "deepspeed"
    zero = estimate(model, config, 8)
    assert zero.optimizer == 0 and zero.host_optimizer == 12 * trainable / 8  # offloaded, as upstream
    check_fit(one, 10 * GB)
    with pytest.raises(DoesNotFit, match=r"training cannot fit: memory per device .* the device has 0 GB"):
        check_fit(one, one.total * 0.9)


def test_the_estimate_matches_a_measured_cpu_peak():
    done = subprocess.run([sys.executable, "-c", MEASURE, str(ROOT)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    assert figures["activations"] > 0.15 * figures["training"]  # the activation model is really exercised
    assert 0.6 < figures["measured"] / figures["training"] < 1.6, figures
