"""Synthesis at corpus scale, without models or Ray: content ids and duplicates, shards, streaming
blocks, the funnel's rates / GPU-hours / ETA, cluster addresses and tokens, waiting for GPUs, GPU
memory planning at stated GPU sizes, and the one-line-per-missing-model check before a run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparkle_bench.cli import main
from sparkle_bench.synth.config import ConfigError, load_config
from sparkle_bench.synth.corpus import fingerprint, in_shard, plan_sources
from sparkle_bench.synth.layout import Layout
from sparkle_bench.synth.memory import MemoryPlanError, known_sizes, model_gb, place, safetensors_bytes
from sparkle_bench.synth.steps import stage_digests

STAGE3 = {"vlm": 66.7, "editor": 34.9, "scorer": 17.5, "animator": 69.0}  # GB, the defaults' stage-3 models (bf16)


def test_ids_come_from_content_and_copies_are_reported_once(tmp_path):
    layout = Layout(tmp_path / "out")
    (tmp_path / "c" / "again").mkdir(parents=True)
    big = os.urandom(300_000)  # above 3 x 64 KiB: fingerprinted from three pieces
    for name, data in (("a.mp4", b"a" * 1000), ("b.mp4", big), ("again/a-copy.mp4", b"a" * 1000), ("again/b.mp4", big)):
        (tmp_path / "c" / name).write_bytes(data)
    clips = sorted((tmp_path / "c").rglob("*.mp4"))
    plan = plan_sources(layout, clips, ["location", "time"], "Sparkle")
    assert [Path(s["source"]).name for s in plan.samples] == ["a.mp4", "b.mp4"]
    assert sorted((Path(c).name, Path(f).name) for c, f in plan.new_duplicates) == [
        ("a-copy.mp4", "a.mp4"),
        ("b.mp4", "b.mp4"),
    ]
    a = plan.samples[0]
    assert a["id"] == f"Sparkle_{a['theme']}_{fingerprint(tmp_path / 'c' / 'a.mp4', 1000)[:12]}"
    changed = bytearray(big)
    changed[150_000] ^= 1  # one byte in the middle piece
    (tmp_path / "c" / "again" / "b.mp4").write_bytes(bytes(changed))
    again = plan_sources(layout, clips, ["location", "time"], "Sparkle")
    assert (
        len(again.samples) == 3 and again.new_duplicates == [] and again.duplicates == 1
    )  # the copy is not reported twice
    lines = (layout.sources).read_text().splitlines()
    assert len(lines) == 5  # four paths, one re-fingerprinted after its change
    assert plan_sources(layout, clips, ["location", "time"], "Sparkle").samples == again.samples  # nothing new
    assert len(layout.sources.read_text().splitlines()) == 5


def test_shards_split_the_corpus_by_content(tmp_path):
    layout = Layout(tmp_path / "out")
    clips = []
    for index in range(30):
        clips.append(tmp_path / f"{index:02d}.mp4")
        clips[-1].write_bytes(f"clip {index}".encode() * 20)
    shards = [plan_sources(layout, clips, ["location"], "S", (i, 3)).samples for i in range(3)]
    ids = [s["id"] for shard in shards for s in shard]
    assert len(ids) == len(set(ids)) == 30 and all(len(shard) > 3 for shard in shards)
    assert all(
        in_shard(s["id"], (i, 3)) and not in_shard(s["id"], ((i + 1) % 3, 3))
        for i, shard in enumerate(shards)
        for s in shard
    )
    assert [p.name for p in layout.source_files()] == [
        "sources-0of3.jsonl"
    ]  # the first shard fingerprinted all of them
    from sparkle_bench.synth.cli import shard

    assert shard("2/3") == (2, 3)
    with pytest.raises(Exception, match="0 <= i < N"):
        shard("3/3")


def test_blocks_batch_rows_but_keep_every_worker_busy():
    from sparkle_bench.synth.pipeline import MAX_BLOCK_ROWS, block_count
    from sparkle_bench.synth.steps import Step

    steps = [Step("a", 1, None, None, True, 1, 0, 2), Step("b", 2, None, None, True, 1, 0, 3)]
    assert block_count(5, steps) == 5  # fewer rows than workers x 4: one row each
    assert block_count(3000, steps) == 20  # 4 per worker: 150 rows a block
    assert block_count(100_000, steps) == 100_000 // MAX_BLOCK_ROWS


def write_decisions(layout: Layout, stage: int, rows: list[tuple[str, str, float, float]], digest: str) -> None:
    """(id, status, seconds, time in s) as one writer's records."""
    path = layout.decisions(stage) / "host-1.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        for sample_id, status, seconds, at in rows:
            handle.write(
                json.dumps(
                    {
                        "id": sample_id,
                        "theme": "location",
                        "stage": stage,
                        "status": status,
                        "reason": "" if status == "accepted" else "edit_score",
                        "detail": "",
                        "settings": digest,
                        "seconds": seconds,
                        "time": int(at * 1e9),
                        "data": {},
                    }
                )
                + "\n"
            )


def test_status_reports_rates_yield_gpu_hours_and_eta(tmp_path):
    from sparkle_bench.synth.status import funnel

    config = tmp_path / "synth.toml"
    config.write_text('out = "out"\nthemes = ["location"]\n[corpus]\npath = "c"\n[stage2]\nnum_gpus = 2\n')
    cfg = load_config(config)
    layout, digests = Layout(cfg.out), stage_digests(cfg)
    layout.work.mkdir(parents=True)
    layout.sources.write_text(
        "".join(
            json.dumps({"source": f"/c/{i}.mp4", "id": f"S_location_{i:012x}", "theme": "location"}) + "\n"
            for i in range(10)
        )
    )
    ids = [f"S_location_{i:012x}" for i in range(10)]
    write_decisions(layout, 1, [(i, "accepted", 1.0, 100 + n) for n, i in enumerate(ids[:8])], digests[1])  # 8 in 7 s
    write_decisions(
        layout,
        2,
        [(i, "rejected" if n < 2 else "accepted", 900.0, 200 + 10 * n) for n, i in enumerate(ids[:4])],
        digests[2],
    )
    rows, corpus = funnel(cfg)
    two = next(r for r in rows if (r["stage"], r["theme"]) == (2, "all"))
    assert (two["in"], two["accepted"], two["yield"], two["seconds_per_sample"]) == (4, 2, 0.5, 900.0)
    assert two["gpu_hours"] == 2.0  # 4 x 900 s x 2 GPUs
    assert two["samples_per_s"] == round(4 / 30, 3)
    one = next(r for r in rows if (r["stage"], r["theme"]) == (1, "all"))
    assert (one["gpu_hours"], one["samples_per_s"]) == (round(8 / 3600, 3), round(8 / 7, 3))  # the VLM check's GPU
    # finished: the two rejected at stage 2 (at 200 s and 210 s): 0.2 samples/s, 8 left -> 40 s
    assert corpus == {"planned": 10, "untried": 2, "duplicates": 0, "finished": 2, "samples_per_s": 0.2, "eta_s": 40}


def test_cluster_address_token_and_ray_client(monkeypatch, tmp_path):
    from sparkle_bench.synth.cluster import cluster_address, use_cluster_token

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cluster_address("") == ""
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # what `ray job submit` gives its driver
    assert cluster_address("") == "10.0.0.5:6379" and cluster_address("auto") == "auto"
    with pytest.raises(ConfigError, match="Ray Client"):
        cluster_address("ray://head:10001")
    for name in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert not use_cluster_token() and "RAY_AUTH_MODE" not in os.environ
    (tmp_path / ".ray").mkdir()
    (tmp_path / ".ray" / "auth_token").write_text("secret")
    assert use_cluster_token() and os.environ["RAY_AUTH_MODE"] == "token"
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")  # the user's choice stands
    assert not use_cluster_token()


def test_stages_asking_for_gpus_wait_for_them_or_stop_in_one_line(monkeypatch):
    import ray

    from sparkle_bench.synth import cluster

    monkeypatch.setattr(cluster, "GPU_POLL_S", 0.01)
    seen = iter([{"CPU": 8}, {"CPU": 8}, {"CPU": 8, "GPU": 4}])
    monkeypatch.setattr(ray, "cluster_resources", lambda: next(seen))
    cluster.wait_for_gpus(2, 5, local=False)  # the cluster grows on the third look
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8})
    with pytest.raises(ConfigError, match="this machine has none") as local:
        cluster.wait_for_gpus(1, 600, local=True)  # a local machine does not grow: no wait
    assert "\n" not in str(local.value) and "num_gpus = 0" in str(local.value)
    with pytest.raises(ConfigError, match="still has after 0.05 s none"):
        cluster.wait_for_gpus(1, 0.05, local=False)


def test_memory_plan_at_stated_gpu_sizes():
    h200 = place(STAGE3, 2, 141)  # 113 GB usable each
    assert {(p.role, p.gpu) for p in h200} == {("animator", 0), ("editor", 0), ("vlm", 1), ("scorer", 1)}
    with pytest.raises(MemoryPlanError, match=r"do not fit 1 GPU\(s\) of 141 GB .* ask for num_gpus = 2"):
        place(STAGE3, 1, 141)
    served = {k: v for k, v in STAGE3.items() if k != "vlm"}
    assert {p.gpu for p in place(served, 2, 141)} == {0, 1}  # 121.4 GB still needs two
    assert {p.gpu for p in place({"editor": 34.9, "scorer": 17.5}, 1, 80)} == {0}  # 52.4 of 64: they share
    with pytest.raises(MemoryPlanError, match="vlm 66.7 GB, animator 69.0 GB larger than one 80 GB GPU"):
        place(STAGE3, 8, 80)
    offloaded = model_gb("Wan-AI/Wan2.2-I2V-A14B-Diffusers", known_sizes(), offload=True)
    assert offloaded == 28.6 and {p.gpu for p in place({"editor": 34.9, "animator": offloaded}, 1, 80)} == {0}


def test_local_models_are_sized_from_safetensors_headers(tmp_path):
    import torch
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(10, 10), "ids": torch.zeros(5, dtype=torch.int64)}, tmp_path / "model.safetensors")
    assert safetensors_bytes(tmp_path / "model.safetensors") == 10 * 10 * 2 + 5 * 8  # floats at bf16, ints as stored
    (tmp_path / "transformer").mkdir()
    save_file({"w": torch.zeros(1000, 1000, dtype=torch.bfloat16)}, tmp_path / "transformer" / "a.safetensors")
    known = known_sizes()
    assert model_gb(str(tmp_path), known) == pytest.approx((240 + 2e6) / 1e9)
    assert model_gb(str(tmp_path), known, offload=True) == pytest.approx(2e6 / 1e9)  # its largest component
    assert model_gb("nobody/unknown-model", known) is None


def test_a_config_that_cannot_load_or_fit_stops_before_ray_one_line_each(tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants
    import ray

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "a.mp4").write_bytes(b"x" * 100)
    config = tmp_path / "synth.toml"
    config.write_text(f'out = "{tmp_path / "out"}"\n[corpus]\npath = "c"\n[ray]\ngpu_memory_gb = 80\n')
    assert main(["synth", "run", str(config)]) == 2
    err = capsys.readouterr().err
    missing = sorted(
        line.split(" = ")[0].split("missing model: ")[1] for line in err.splitlines() if "missing model:" in line
    )
    assert missing == [
        "models.animator.model",
        "models.editor.model",
        "models.renderer.model",
        "models.scorer.lora",
        "models.scorer.model",
        "models.segmenter.model",
        "models.vlm.model",
    ]
    assert "stage 3: vlm 66.7 GB, animator 69.0 GB larger than one 80 GB GPU" in err
    assert "Traceback" not in err and not ray.is_initialized()

    from sparkle_bench.synth.models import role_devices

    config.write_text(
        config.read_text().replace("gpu_memory_gb = 80", "gpu_memory_gb = 141") + "[stage3]\nnum_gpus = 2\n"
    )
    devices = role_devices(load_config(config), 3, ("vlm", "editor", "scorer", "animator"), "cuda")
    assert devices == {"animator": "cuda:0", "editor": "cuda:0", "vlm": "cuda:1", "scorer": "cuda:1"}
    assert role_devices(load_config(config), 3, ("vlm",), "cpu") == {"vlm": "cpu"}


def synth_imports() -> dict[str, set[str]]:
    """Module -> the sibling modules of ``sparkle_bench.synth`` it imports, at any depth (lazy ones too)."""
    import ast

    root = Path(__file__).resolve().parents[1] / "sparkle_bench" / "synth"
    graph: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        name, package = ".".join(parts), list(parts[:-1])  # package: the module's folder inside synth
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level) or node.level - 1 > len(package):
                continue  # absolute, or above the synth package
            target = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
            for alias in node.names:
                candidates = [f"{target}.{alias.name}".strip("."), target]
                found.update(c for c in candidates if (root / (c.replace(".", "/") + ".py")).exists())
        graph[name] = found - {name}
    return graph


def test_the_synth_package_has_no_import_circle():
    graph = synth_imports()
    assert {"steps", "stage1"} <= graph["preflight"] | graph["steps"] and "steps" not in graph["config"]
    state: dict[str, int] = {}

    def visit(name: str, trail: list[str]) -> None:
        state[name] = 1
        for other in sorted(graph.get(name, ())):
            assert state.get(other) != 1, " -> ".join(trail + [name, other])
            if other not in state:
                visit(other, trail + [name])
        state[name] = 2

    for name in graph:
        if name not in state:
            visit(name, [])
    graph["config"].add("steps")  # the circle issue 15 found: config -> steps -> stage1 -> config
    state.clear()
    with pytest.raises(AssertionError, match="config -> steps"):
        for name in sorted(graph):
            if name not in state:
                visit(name, [])
