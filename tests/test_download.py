"""`sparkle-bench download` and the weights check of eval/infer, against a stand-in hub on loopback
(tests/hub_server.py) so huggingface_hub's real download code runs: only the files a model reads,
sizes printed first, nothing fetched twice, a dropped connection resumed, a stopped download
finished by the same command, and one line naming every missing repository when offline."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from sparkle_bench.bench import Sample, open_bench
from sparkle_bench.cli import main
from sparkle_bench.models.base import EditedVideo, ModelAdapter
from sparkle_bench.models.hub import HubRepo
from sparkle_bench.models.weights import cached_snapshot, human_size
from sparkle_bench.testing.hub_server import HubServer, use_hub
from sparkle_bench.video import read_frames

VACE = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
VACE_READ = (  # what WanVACEPipeline.from_pretrained reads
    "model_index.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json",
    "text_encoder/model-00001-of-00002.safetensors",
    "text_encoder/model-00002-of-00002.safetensors",
    "text_encoder/model.safetensors.index.json",
    "tokenizer/special_tokens_map.json",
    "tokenizer/spiece.model",
    "tokenizer/tokenizer.json",
    "tokenizer/tokenizer_config.json",
    "transformer/config.json",
    "transformer/diffusion_pytorch_model.safetensors",
    "vae/config.json",
    "vae/diffusion_pytorch_model.safetensors",
)
VACE_UNREAD = (
    ".gitattributes",
    "README.md",
    "assets/comp_effic.png",
    "assets/vace_demo.mp4",
    "text_encoder/pytorch_model.bin",
    "wan2.1_vace_1.3B_comfy.safetensors",
)


def _write_repo(folder: Path, names: tuple[str, ...], seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    content = {}
    for i, name in enumerate(names):
        data = rng.integers(0, 256, 200 + 997 * i, dtype=np.uint8).tobytes()
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
        content[name] = data
    return content


@pytest.fixture
def hub(tmp_path, monkeypatch):
    with HubServer() as server:
        use_hub(monkeypatch, server.url, tmp_path / "hf")
        yield server


@pytest.fixture
def vace_repo(hub, tmp_path) -> dict[str, bytes]:
    content = _write_repo(tmp_path / "served" / VACE, VACE_READ + VACE_UNREAD)
    hub.add(VACE, tmp_path / "served" / VACE)
    return content


def test_sizes_read_as_the_hub_shows_them():
    assert [human_size(n) for n in (0, 999, 1000, 93_480, 1_100_000, 16_200_000_000)] == [
        "0 B",
        "999 B",
        "1.0 kB",
        "93.5 kB",
        "1.1 MB",
        "16.2 GB",
    ]


def _total_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("total:"))


def test_download_model_fetches_only_what_it_reads_once(hub, vace_repo, capsys):
    assert main(["download", "--model", "vace"]) == 0
    size = sum(len(vace_repo[n]) for n in VACE_READ)
    err = capsys.readouterr().err
    assert _total_line(err) == f"total: {len(VACE_READ)} files, {human_size(size)}, {human_size(size)} to download"
    assert re.search(rf"{VACE}\s+{len(VACE_READ)} files\s+{re.escape(human_size(size))}", err)
    assert sorted(hub.downloads()) == sorted(f"{VACE}/{n}" for n in VACE_READ)  # no README, media, .bin, comfy file
    folder = cached_snapshot(HubRepo(VACE, tuple(VACE_READ)))
    assert folder is not None and all((folder / n).read_bytes() == vace_repo[n] for n in VACE_READ)

    hub.log.clear()
    assert main(["download", "--model", "vace"]) == 0
    assert hub.downloads() == []
    assert _total_line(capsys.readouterr().err) == f"total: {len(VACE_READ)} files, {human_size(size)}, 0 B to download"


def test_dropped_connection_resumes_from_its_byte(hub, vace_repo, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1000)  # 10 MB: a tiny file would arrive in one chunk
    name = "transformer/diffusion_pytorch_model.safetensors"
    hub.cut[f"{VACE}/{name}"] = 5500
    assert main(["download", "--model", "vace"]) == 0
    ranges = [e["range"] for e in hub.log if e["path"].endswith(name) and e["method"] == "GET"]
    assert ranges == [None, "bytes=5000-"]  # the whole chunks it had written are kept
    assert (cached_snapshot(HubRepo(VACE, VACE_READ)) / name).read_bytes() == vace_repo[name]


def test_stopped_download_is_finished_by_the_same_command(hub, vace_repo, capsys):
    broken = f"{VACE}/vae/diffusion_pytorch_model.safetensors"
    hub.broken.add(broken)
    assert main(["download", "--model", "vace"]) == 2
    err = capsys.readouterr().err
    assert f"downloading {VACE} stopped" in err and "run the same command again to resume" in err
    first = set(hub.downloads()) - {broken}
    assert first  # other files arrived before or while the broken one failed
    hub.broken.clear()
    hub.log.clear()
    assert main(["download", "--model", "vace"]) == 0
    second = set(hub.downloads())
    assert broken in second and not second & first
    assert first | second == {f"{VACE}/{n}" for n in VACE_READ}


class TwoRepos(ModelAdapter):
    """A model reading two hub repositories; its edit paints the colour its weights file holds."""

    name = "two-repos"

    def hub_repos(self) -> list[HubRepo]:
        return [HubRepo("org/colour", ("colour.json",), why="the colour"), HubRepo("org/other", why="whole repo")]

    def edit(self, sample: Sample) -> EditedVideo:
        folder = cached_snapshot(self.hub_repos()[0])
        colour = json.loads((folder / "colour.json").read_text())
        frames = read_frames(sample.source)[:3]
        return EditedVideo(np.full_like(frames, colour), 8.0)


@pytest.fixture
def two_repos(hub, tmp_path):
    for repo_id, files in (
        ("org/colour", {"colour.json": "[10, 200, 30]", "unused.bin": "x" * 100}),
        ("org/other", {"a.txt": "a", "b/c.txt": "c"}),
    ):
        for name, text in files.items():
            (tmp_path / "served" / repo_id / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "served" / repo_id / name).write_text(text)
        hub.add(repo_id, tmp_path / "served" / repo_id)
    return "tests.test_download:TwoRepos"


def test_eval_offline_names_every_missing_repository_in_one_line(
    two_repos, hub, demo_root, tmp_path, capsys, monkeypatch
):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    args = ["eval", "--bench", "demo", "--limit", "1", "--model", two_repos, "--runs-dir", str(tmp_path / "runs")]
    assert main(args) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error:")
    assert "org/colour, org/other" in errors[0] and "HF_HUB_OFFLINE" in errors[0]
    assert f"`sparkle-bench download --model {two_repos}`" in errors[0]
    assert hub.log == []  # offline: not one request


def test_eval_with_unreachable_hub_fails_in_one_line(two_repos, demo_root, tmp_path, capsys, monkeypatch):
    use_hub(monkeypatch, "http://127.0.0.1:9", tmp_path / "hf2")  # discard port: connection refused
    assert (
        main(["infer", "--bench", "demo", "--limit", "1", "--model", two_repos, "--runs-dir", str(tmp_path / "runs")])
        == 2
    )
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines[0] == "two-repos: fetching the weights not in the local Hugging Face cache" and len(lines) == 2
    assert lines[1].startswith("error:") and "could not list org/colour (" in lines[1] and "org/other (" in lines[1]


def test_download_names_repositories_the_hub_lacks_and_downloads_nothing(hub, tmp_path, capsys):
    (tmp_path / "served" / "colour").mkdir(parents=True)
    (tmp_path / "served" / "colour" / "renamed.json").write_text("[1, 2, 3]")
    hub.add("org/colour", tmp_path / "served" / "colour")  # org/other is not on the hub at all
    assert main(["download", "--model", "tests.test_download:TwoRepos"]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        error.startswith("error: the hub at http://127.0.0.1:") and "org/colour (no file matches colour.json)" in error
    )
    assert "org/other (RepositoryNotFoundError" in error and hub.downloads() == []


def test_eval_downloads_missing_weights_then_generates(two_repos, hub, demo_root, tmp_path, capsys):
    runs = tmp_path / "runs"
    args = [
        "infer",
        "--bench",
        "demo",
        "--limit",
        "1",
        "--model",
        two_repos,
        "--runs-dir",
        str(runs),
        "--run-name",
        "r",
    ]
    assert main(args) == 0
    assert sorted(hub.downloads()) == ["org/colour/colour.json", "org/other/a.txt", "org/other/b/c.txt"]
    assert "total: 3 files" in capsys.readouterr().err
    video = next((runs / "r" / "outputs").rglob("*_edited.mp4"))
    assert np.abs(read_frames(video).astype(int).mean(axis=(0, 1, 2)) - [10, 200, 30]).max() < 4
    hub.log.clear()
    shutil.rmtree(runs / "r" / "outputs")
    assert main(args) == 0 and hub.log == []  # cached: the check makes no request


def test_download_bench_themes_fetches_only_that_theme(hub, demo_root, tmp_path):
    served = tmp_path / "served" / "Sparkle-Bench"
    for item in demo_root.iterdir():  # the published layout: CSVs, metadata, source_videos/, ref_images/
        if item.name.endswith(("_bench.csv", "_metadata.jsonl")):
            (served / item.name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(item, served / item.name)
        elif item.name in ("source_videos", "ref_images"):
            shutil.copytree(item, served / item.name)
    (served / "README.md").write_text("# Sparkle-Bench\n")
    hub.add("stdKonjac/Sparkle-Bench", served, repo_type="dataset")

    root = tmp_path / "bench"
    assert main(["download", "--bench", "sparkle", "--root", str(root), "--themes", "time"]) == 0
    assert hub.downloads() and all(
        re.search(r"/(time_|source_videos/time/|ref_images/time/)", f) for f in hub.downloads()
    )
    bench = open_bench(str(root))
    demo = open_bench(str(demo_root), ["time"])
    assert bench.themes == ["time"] and [s.id for s in bench.samples] == [s.id for s in demo.samples]

    whole = tmp_path / "whole"
    assert main(["download", "--bench", "sparkle", "--root", str(whole)]) == 0
    assert len(open_bench(str(whole)).samples) == len(open_bench(str(demo_root)).samples)


KIWI_READ = {  # what kiwi-sparkle reads of each repository it needs (tests/hub_layout.py lays out the real trees)
    "stdKonjac/Kiwi-Sparkle-720P-81F": ("model.safetensors",),
    "Wan-AI/Wan2.2-TI2V-5B-Diffusers": (
        "model_index.json",
        "transformer/config.json",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        *(f"transformer/diffusion_pytorch_model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)),
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
    ),
    "Qwen/Qwen2.5-VL-3B-Instruct": (
        "chat_template.json",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
    ),
}


@pytest.fixture(scope="module")
def kiwi_served(tmp_path_factory) -> Path:
    from sparkle_bench.testing.hub_layout import build_hub_repo

    root = tmp_path_factory.mktemp("kiwi-hub")
    for repo_id in KIWI_READ:
        build_hub_repo(repo_id, root)
    return root


@pytest.fixture
def kiwi_hub(hub, kiwi_served):
    for repo_id in KIWI_READ:
        hub.add(repo_id, kiwi_served / repo_id)
    return hub


def test_download_kiwi_sparkle_fetches_its_three_repositories_without_the_text_encoder(kiwi_hub, kiwi_served, capsys):
    assert main(["download", "--model", "kiwi-sparkle"]) == 0
    expected = {f"{r}/{n}" for r, names in KIWI_READ.items() for n in names}
    assert set(kiwi_hub.downloads()) == expected and len(kiwi_hub.downloads()) == len(expected)
    size = sum((kiwi_served / f).stat().st_size for f in expected)
    err = capsys.readouterr().err
    assert _total_line(err) == f"total: {len(expected)} files, {human_size(size)}, {human_size(size)} to download"
    for repo_id, names in KIWI_READ.items():
        repo_size = sum((kiwi_served / repo_id / n).stat().st_size for n in names)
        assert re.search(rf"{repo_id}\s+{len(names)} files\s+{re.escape(human_size(repo_size))}", err)
    kiwi_hub.log.clear()
    assert main(["download", "--model", "kiwi-sparkle"]) == 0 and kiwi_hub.downloads() == []


def test_eval_kiwi_sparkle_offline_names_all_three_repositories(hub, demo_root, tmp_path, capsys, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert (
        main(
            [
                "eval",
                "--bench",
                "demo",
                "--limit",
                "1",
                "--model",
                "kiwi-sparkle",
                "--model-option",
                "steps=2",
                "--runs-dir",
                str(tmp_path / "runs"),
            ]
        )
        == 2
    )
    errors = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: kiwi-sparkle needs ")
    assert all(repo_id in errors[0] for repo_id in KIWI_READ)
    assert "`sparkle-bench download --model kiwi-sparkle --model-option steps=2`" in errors[0]


def test_eval_kiwi_sparkle_downloads_then_generates(kiwi_hub, demo_root, tmp_path):
    runs = tmp_path / "runs"
    small = ["--model-option", "pixel_budget=4096", "--model-option", "steps=2", "--model-option", "max_frames=5"]
    assert (
        main(
            [
                "infer",
                "--bench",
                "demo",
                "--limit",
                "1",
                "--model",
                "kiwi-sparkle",
                *small,
                "--runs-dir",
                str(runs),
                "--run-name",
                "k",
            ]
        )
        == 0
    )
    assert len(kiwi_hub.downloads()) == sum(len(n) for n in KIWI_READ.values())
    video = next((runs / "k" / "outputs").rglob("*_edited.mp4"))
    assert read_frames(video).shape[0] == 5
