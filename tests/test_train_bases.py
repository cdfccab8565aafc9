"""A trained checkpoint finds its base from any folder, on any machine: the trainer (a few real steps
from a local Kiwi folder, run from its own working directory with a relative ``out``) records each
base in ``kiwi.json`` by absolute and checkpoint-relative path plus a fingerprint; inference from
another working directory, from a copied run, with the base moved, with the start folder or another
Kiwi folder given as ``base=``, and from an older ``kiwi.json`` (paths relative to the folder
training ran in), each as the resolution order says."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from sparkle_bench.cli import main
from sparkle_bench.models.base import WeightsError
from sparkle_bench.models.kiwi.folders import save_folder
from sparkle_bench.models.kiwi.sidecar import entry, fingerprint, sidecar_text
from sparkle_bench.models.kiwi.sources import open_kiwi
from sparkle_bench.testing.tiny_kiwi import tiny_kiwi_model

from .test_train import WIDE, config_file, pairs  # noqa: F401 (fixture)

SMALL = ["--model-option", "pixel_budget=4096", "--model-option", "steps=2", "--model-option", "max_frames=5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, pairs) -> dict:  # noqa: F811
    """Two steps from ``ROOT/models/kiwi-tiny`` (given by absolute path), run in ``ROOT/work`` with
    ``out = "run"``, as a user trains; plus another Kiwi folder of the same architecture whose
    weights differ (so its safetensors headers equal the start's)."""
    root = tmp_path_factory.mktemp("bases")
    start = save_folder(tiny_kiwi_model(root / "tiny", pretrained_like=True, **WIDE), root / "models" / "kiwi-tiny")
    other = tiny_kiwi_model(root / "tiny", pretrained_like=True, **WIDE)
    with torch.no_grad():
        other.transformer.blocks[0].attn1.to_q.weight.add_(0.01)
    other = save_folder(other, root / "models" / "kiwi-other")
    work = root / "work"
    work.mkdir()
    config = config_file(work, start, pairs, steps=2, save_every=2, out="run")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)
        assert main(["train", str(config)]) == 0
    return {"root": root, "start": start, "other": other, "checkpoint": work / "run" / "checkpoints" / "step-000002"}


def infer(checkpoint: Path, runs: Path, *options: str) -> int:
    return main(
        [
            "infer",
            "--bench",
            "demo",
            "--ids",
            "Demo_time_000",
            "--model",
            f"kiwi-sparkle:{checkpoint}",
            "--runs-dir",
            str(runs),
            *SMALL,
            *(x for o in options for x in ("--model-option", o)),
        ]
    )


def dit(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.transformer.state_dict().items()}


@pytest.fixture()
def base_moved(trained):
    """The start folder moved away from where training read it (put back afterwards)."""
    moved = trained["root"] / "elsewhere" / "kiwi-tiny"
    moved.parent.mkdir(exist_ok=True)
    shutil.move(trained["start"], moved)
    try:
        yield moved
    finally:
        shutil.rmtree(trained["start"], ignore_errors=True)
        shutil.move(moved, trained["start"])


def test_kiwi_json_records_the_start_by_absolute_and_checkpoint_relative_path_and_fingerprint(trained):
    recorded = json.loads((trained["checkpoint"] / "kiwi.json").read_text())
    base = recorded["base"]
    assert base["path"] == str(trained["start"].resolve())
    assert (trained["checkpoint"] / base["relative"]).resolve() == trained["start"].resolve()
    assert base["relative"] == os.path.join("..", "..", "..", "..", "models", "kiwi-tiny")  # not from the training cwd
    assert base["fingerprint"] == fingerprint(trained["start"]) != fingerprint(trained["other"])
    assert recorded["start"] == base and recorded["mllm"] is None and recorded["step"] == 2


def test_the_fingerprint_follows_the_weights_not_the_place(trained, tmp_path):
    copy = shutil.copytree(trained["start"], tmp_path / "copy")
    (copy / "README.md").write_text("a copy")  # not a weight or config
    assert fingerprint(copy) == fingerprint(trained["start"])
    header = (trained["other"] / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()[:4096]
    assert header == (copy / "transformer" / "diffusion_pytorch_model.safetensors").read_bytes()[:4096]  # same headers
    assert fingerprint(trained["other"]) != fingerprint(copy)  # told apart by the sampled data


def test_a_checkpoint_generates_from_another_working_directory(trained, tmp_path, monkeypatch, capsys):
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)
    assert infer(trained["checkpoint"], tmp_path / "runs") == 0, capsys.readouterr().err
    assert len(list((tmp_path / "runs").rglob("*_edited.mp4"))) == 1


def test_a_run_moved_with_its_base_finds_it_by_the_relative_path(trained, base_moved, tmp_path, monkeypatch):
    machine = tmp_path / "machine2"
    shutil.copytree(base_moved, machine / "models" / "kiwi-tiny")
    shutil.copytree(trained["root"] / "work" / "run", machine / "work" / "run")
    monkeypatch.chdir(tmp_path)
    copied = machine / "work" / "run" / "checkpoints" / "step-000002"
    assert not trained["start"].exists()  # the recorded absolute path is gone
    model = open_kiwi(str(copied), torch.float32)
    assert model.encoder.qwen.config is not None and model.transformer is not None


def test_a_missing_base_fails_in_one_line_then_the_override_loads_it(
    trained, base_moved, tmp_path, monkeypatch, capsys
):
    copy = shutil.copytree(trained["checkpoint"], tmp_path / "copied" / "step-000002")
    monkeypatch.chdir(tmp_path)
    assert infer(copy, tmp_path / "runs") == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "recorded in" in x]
    assert str(trained["start"].resolve()) in line and "--model-option base=PATH" in line and "Traceback" not in err
    assert infer(copy, tmp_path / "runs2", f"base={base_moved}") == 0, capsys.readouterr().err
    assert len(list((tmp_path / "runs2").rglob("*_edited.mp4"))) == 1


def test_another_folder_at_the_recorded_path_is_refused_naming_both(trained, base_moved, tmp_path):
    shutil.copytree(trained["other"], trained["start"])
    with pytest.raises(WeightsError, match="holds other weights") as refused:
        open_kiwi(str(trained["checkpoint"]), torch.float32)
    named = str(refused.value)
    assert str(trained["start"].resolve()) in named and "\n" not in named
    assert fingerprint(base_moved)[:12] in named and fingerprint(trained["other"])[:12] in named  # recorded, found
    assert "--model-option base=PATH" in str(refused.value)


def test_the_start_folder_given_as_base_is_accepted(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    given = open_kiwi(str(trained["checkpoint"]), torch.float32, base=str(trained["start"]))
    found = open_kiwi(str(trained["checkpoint"]), torch.float32)
    assert all(torch.equal(v, dit(found)[k]) for k, v in dit(given).items())


def test_a_different_kiwi_folder_given_as_base_is_refused_naming_both(trained, tmp_path, capsys):
    assert infer(trained["checkpoint"], tmp_path / "runs", f"base={trained['other']}") == 2
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if "is not the base" in x]
    assert f"base={trained['other']}" in line and str(trained["start"].resolve()) in line and "Traceback" not in err
    assert not list((tmp_path / "runs").rglob("*.mp4"))


def test_an_older_kiwi_json_is_found_above_the_checkpoint_with_a_line(trained, tmp_path, monkeypatch, capsys):
    """The format before: paths relative to the folder training ran in."""
    copy = shutil.copytree(trained["checkpoint"], trained["root"] / "work" / "old" / "checkpoints" / "step-000002")
    old = os.path.relpath(trained["start"], trained["root"] / "work")
    (copy / "kiwi.json").write_text(json.dumps({"base": old, "mllm": old, "start": old, "step": 2}))
    monkeypatch.chdir(tmp_path)
    assert open_kiwi(str(copy), torch.float32) is not None
    err = capsys.readouterr().err
    assert "an older kiwi.json" in err and str(trained["start"].resolve()) in err
    lost = shutil.copytree(copy, tmp_path / "lost" / "step-000002")
    with pytest.raises(WeightsError, match=r"an older kiwi\.json.*--model-option base=PATH") as missing:
        open_kiwi(str(lost), torch.float32)
    assert repr(old) in str(missing.value) and "\n" not in str(missing.value)


def test_hub_bases_are_recorded_with_their_revision_and_found_from_the_cache(tmp_path, monkeypatch, demo_root):
    """A base in the Hugging Face cache: recorded as hub id + the snapshot's commit, resolved from
    the cache (at that revision, else any cached one with the same fingerprint), fetched at it."""
    from huggingface_hub import constants

    from sparkle_bench.models import load_model
    from sparkle_bench.testing.hub_layout import KIWI_SPARKLE, QWEN, WAN_BASE, build_hub_repo, install_in_cache

    cache = tmp_path / "cache"
    base, qwen = install_in_cache(WAN_BASE, cache, "a" * 40), install_in_cache(QWEN, cache, "b" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    record = entry(base)
    assert record == {"hub": WAN_BASE, "revision": "a" * 40, "fingerprint": fingerprint(base)}
    checkpoint = build_hub_repo(KIWI_SPARKLE, tmp_path / "repos")
    (checkpoint / "kiwi.json").write_text(sidecar_text({"base": record, "mllm": entry(qwen)}, checkpoint))
    assert {(r.repo_id, r.revision) for r in load_model(f"kiwi-sparkle:{checkpoint}", {}).hub_repos()} == {
        (WAN_BASE, "a" * 40),
        (QWEN, "b" * 40),
    }
    assert open_kiwi(str(checkpoint), torch.float32) is not None
    stale = {"base": {**record, "revision": "c" * 40}, "mllm": entry(qwen)}  # not cached; main has the same weights
    (checkpoint / "kiwi.json").write_text(sidecar_text(stale, checkpoint))
    assert open_kiwi(str(checkpoint), torch.float32) is not None
    wrong = {**stale, "base": {**stale["base"], "fingerprint": "0" * 64}}
    (checkpoint / "kiwi.json").write_text(sidecar_text(wrong, checkpoint))
    with pytest.raises(WeightsError, match=f"{WAN_BASE}@cccccccccccc.*holds other weights"):
        open_kiwi(str(checkpoint), torch.float32)
