import json
import shutil

import pytest

from sparkle_bench.bench import BenchError, load_openve, load_sparkle, select
from sparkle_bench.subsets import apply_subset


@pytest.fixture
def bench_copy(demo_root, tmp_path):
    root = tmp_path / "bench"
    shutil.copytree(demo_root, root)
    return root


def problems(root):
    with pytest.raises(BenchError) as info:
        load_sparkle(root)
    return info.value.problems


def test_demo_bench_loads_in_sparkle_layout(demo_root):
    bench = load_sparkle(demo_root)
    assert bench.themes == ["location", "season", "style", "time"]
    assert len(bench.samples) == 12
    sample = next(s for s in bench.samples if s.id == "Demo_season_000")
    assert (sample.subtheme, sample.scene) == ("winter", "snowy village street")
    assert sample.output_relpath == "season/winter---snowy_village_street/Demo_season_000_edited.mp4"
    assert sample.ref_image is not None and bench.masks_dir is not None


def test_missing_column_is_reported(bench_copy):
    csv = bench_copy / "time_bench.csv"
    csv.write_text(csv.read_text().replace("original_video", "video", 1))
    assert any("time_bench.csv: missing column(s) original_video" in p for p in problems(bench_copy))


def test_duplicate_id_row_without_metadata_and_orphan_metadata(bench_copy):
    csv = bench_copy / "style_bench.csv"
    lines = csv.read_text().splitlines()
    csv.write_text("\n".join(lines + [lines[1]]) + "\n")  # duplicate row
    meta = bench_copy / "season_metadata.jsonl"
    records = meta.read_text().splitlines()
    meta.write_text("\n".join(records[1:]) + "\n")  # Demo_season_000 loses its metadata
    loc = bench_copy / "location_metadata.jsonl"
    extra = json.loads(loc.read_text().splitlines()[0]) | {"id": "Demo_location_999"}
    loc.write_text(loc.read_text() + json.dumps(extra) + "\n")
    found = problems(bench_copy)
    assert any("duplicate id Demo_style_000" in p for p in found)
    assert any("Demo_season_000 has no record in season_metadata.jsonl" in p for p in found)
    assert any("id Demo_location_999 has no row in location_bench.csv" in p for p in found)


def test_bad_keyword_absolute_escaping_and_missing_paths(bench_copy):
    meta = bench_copy / "time_metadata.jsonl"
    meta.write_text(meta.read_text().replace('"night: neon-lit city street"', '"neon-lit city street"'))
    csv = bench_copy / "location_bench.csv"
    text = csv.read_text()
    text = text.replace("source_videos/location/Demo_location_000.mp4", "/etc/Demo_location_000.mp4")
    text = text.replace("source_videos/location/Demo_location_001.mp4", "../../Demo_location_001.mp4")
    csv.write_text(text)
    (bench_copy / "source_videos/season/Demo_season_002.mp4").unlink()
    found = problems(bench_copy)
    assert any("chosen_keyword 'neon-lit city street' of Demo_time_000 is not 'subtheme: scene'" in p for p in found)
    assert any("'/etc/Demo_location_000.mp4' is absolute" in p for p in found)
    assert any("'../../Demo_location_001.mp4' escapes the bench root" in p for p in found)
    assert any("source video source_videos/season/Demo_season_002.mp4 not found" in p for p in found)
    assert len(found) == 4


def test_limit_is_stratified_and_deterministic(demo_root):
    bench = load_sparkle(demo_root)
    first, again = select(bench, limit=6), select(bench, limit=6)
    assert [s.id for s in first.samples] == [s.id for s in again.samples]
    counts = {t: sum(s.theme == t for s in first.samples) for t in bench.themes}
    assert sorted(counts.values()) == [1, 1, 2, 2]
    assert select(bench, themes=["time"], ids=["Demo_time_001"]).samples[0].id == "Demo_time_001"
    with pytest.raises(BenchError, match="unknown theme"):
        select(bench, themes=["weather"])


def test_smoke_subset_is_two_fixed_samples_per_theme(demo_root):
    """8 samples on the demo as on Sparkle-Bench: enough for the gate to test (5 or more)."""
    bench = apply_subset(load_sparkle(demo_root, name="demo"), "smoke")
    again = apply_subset(load_sparkle(demo_root, name="demo"), "smoke")
    assert [s.id for s in bench.samples] == [s.id for s in again.samples]
    assert sorted(s.theme for s in bench.samples) == sorted(["location", "season", "style", "time"] * 2)
    assert bench.selection["subset"] == "smoke"


def test_openve_csv(demo_root, tmp_path):
    csv = tmp_path / "openve.csv"
    shutil.copytree(demo_root / "source_videos", tmp_path / "videos")
    csv.write_text(
        "edited_type,prompt,original_video\n"
        "background_change,Make it a beach,videos/time/Demo_time_000.mp4\n"
        "global_style,Make it anime,videos/style/Demo_style_000.mp4\n"
    )
    bench = load_openve(csv)
    assert [(s.theme, s.id) for s in bench.samples] == [
        ("background_change", "Demo_time_000"),
        ("global_style", "Demo_style_000"),
    ]
    assert bench.samples[0].output_relpath == "background_change/Demo_time_000_edited.mp4"
