"""The HTML report: structure and escaping in the file, then in headless Chromium: table rows,
every video loads, a `<script>` prompt stays text, the gallery filters work, a screenshot."""

from __future__ import annotations

import csv
import html
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest

from sparkle_bench.cli import main
from sparkle_bench.records import append_jsonl
from sparkle_bench.tables import run_records

from .browser import Browser, find_chromium

HOSTILE = 'Swap in <script>window.__pwned = 1</script> a "neon" street & rain <!-- </b>'
IDS = "Demo_location_000,Demo_season_001,Demo_style_002,Demo_time_000"


def _hostile_prompt(bench: Path) -> None:
    path = bench / "time_bench.csv"
    rows = list(csv.reader(path.open()))
    for row in rows[1:]:
        if row[2].endswith("Demo_time_000.mp4"):
            row[1] = HOSTILE
    with path.open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


@pytest.fixture(scope="module")
def report(demo_root, tmp_path_factory):
    """Two runs on 4 demo samples (one prompt hostile): a good edit with judge answers, and a still
    composite with one output corrupt and one gone; the report of both beside the published rows."""
    root = tmp_path_factory.mktemp("report")
    bench = root / "bench"
    shutil.copytree(demo_root, bench)
    _hostile_prompt(bench)
    runs = root / "runs"
    common = ["--bench", str(bench), "--ids", IDS, "--runs-dir", str(runs), "--workers", "1"]
    for model in ("reference", "still-composite"):
        assert main(["eval", *common, "--model", model]) == 0
    still = runs / "sparkle-still-composite"
    outputs = sorted((still / "outputs").rglob("*_edited.mp4"))
    next(p for p in outputs if "Demo_season_001" in p.name).write_bytes(b"\x00" * 500)  # corrupt
    next(p for p in outputs if "Demo_style_002" in p.name).unlink()  # gone
    assert main(["score", *common, "--model", "still-composite"]) == 0
    good = runs / "sparkle-reference"
    for sample_id, record in run_records(good).items():
        append_jsonl(good / "judge.jsonl", {
            "id": sample_id, "theme": record["theme"], "status": "ok", "judge_model": "test-judge", "rubric": "sparkle",
            "rubric_version": "sparkle-v1", "judged_at": "2026-01-01T00:00:00.000000000Z", "answers": ["Instruction Compliance: 5 </pre><b>bold?</b>"],
            "judge": {"judge_overall": 4.5, "judge_instruction": 5, "judge_visual_quality": 4, "judge_fg_integrity": 5,
                      "judge_fg_motion": 4, "judge_bg_dynamics": 4, "judge_bg_quality": 5}})
    assert main(["table", str(good)]) == 0
    out = root / "site"
    assert main(["report", str(good), str(still), "--published", "sparkle_bench", "--out", str(out)]) == 0
    return {"index": out / "index.html", "good": good, "still": still}


def test_report_file_is_escaped_self_contained_and_linked(report):
    text = report["index"].read_text()
    assert "<script>window.__pwned" not in text and html.escape(HOSTILE) in text
    assert text.count("<script>") == 1 and "<b>bold?" not in text and "&lt;/pre&gt;&lt;b&gt;bold?&lt;/b&gt;" in text
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # no network
    assert len(re.findall(r"<article class=\"sample\"", text)) == 4
    videos = re.findall(r"<video src=\"([^\"]+)\"", text)
    assert len(videos) == 4 + 4 + 2  # sources, every good edit, the two still composites left
    for url in videos:
        assert not url.startswith("/") and (report["index"].parent / unquote(url)).is_file()
    assert "failed: " in text and "missing: no edited video" in text
    assert text.count("<img src=\"data:image/svg+xml;base64,") == 2  # radar and bars


def test_copied_media_make_a_folder_that_can_move(report, tmp_path):
    site = tmp_path / "site"
    assert main(["report", str(report["good"]), "--copy-media", "--out", str(site)]) == 0
    moved = site.rename(tmp_path / "moved")
    videos = re.findall(r"<video src=\"([^\"]+)\"", (moved / "index.html").read_text())
    assert len(videos) == 8 and all(url.startswith("media/") and (moved / unquote(url)).is_file() for url in videos)


def test_report_in_headless_chromium(report, tmp_path):
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not found (Debian: apt-get install chromium; .ci/run installs it)")
    browser = Browser(chromium, tmp_path / "profile")
    try:
        browser.open(report["index"].as_uri())
        lazy = "[...document.querySelectorAll('article.sample:last-of-type video')].map(v => v.preload + v.readyState)"
        assert browser.run(lazy) == ["none0"] * 3  # far below the fold: nothing fetched yet
        measured = browser.run("[...document.querySelectorAll('#board tbody.measured tr')].map(r => r.cells[0].textContent)")
        paper = browser.run("[...document.querySelectorAll('#board tbody.paper tr')].map(r => r.cells[0].textContent)")
        assert measured == ["reference", "still-composite"] and paper == ["Kiwi-Editpaper", "Kiwi-Sparklepaper", "Lucy-Edit-1.1paper"]
        browser.run("[...document.querySelectorAll('#board thead th')].find(th => th.textContent === 'fPSNR↑').click()")
        psnr = {m: pd.read_csv(report[m] / "summary.csv").set_index("theme").loc["MACRO", "fg_psnr"] for m in ("good", "still")}
        best_first = ["reference", "still-composite"] if psnr["good"] > psnr["still"] else ["still-composite", "reference"]
        assert browser.run("[...document.querySelectorAll('#board tbody.measured tr')].map(r => r.cells[0].textContent)") == best_first
        assert browser.run("document.querySelectorAll('#board tbody.paper tr').length") == 3  # sorted apart, never mixed
        loads = browser.run("""Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
            const timer = setTimeout(() => done('timeout ' + v.src), 20000);
            v.addEventListener('loadeddata', () => { clearTimeout(timer); done(v.videoWidth > 0 ? 'ok' : 'empty ' + v.src); });
            v.addEventListener('error', () => { clearTimeout(timer); done('error ' + v.src); });
            v.preload = 'auto'; v.load(); })))""")
        assert loads == ["ok"] * 10
        prompt = browser.run("document.querySelector('#s-Demo_time_000 .prompt').textContent")
        assert prompt == HOSTILE and browser.run("typeof window.__pwned") == "undefined"

        def visible(theme: str = "", model: str = "", failure: str = "") -> list[str]:
            return browser.run(f"""(() => {{
                for (const [id, value] of [['f-theme', {theme!r}], ['f-model', {model!r}], ['f-failure', {failure!r}]]) {{
                    const select = document.getElementById(id); select.value = value; select.dispatchEvent(new Event('change')); }}
                return [...document.querySelectorAll('article.sample')].filter(a => !a.hidden).map(a => a.id); }})()""")

        assert visible(theme="time") == ["s-Demo_time_000"]
        assert browser.run("document.getElementById('f-count').textContent") == "1 of 4 samples"
        assert visible(failure="missing") == ["s-Demo_style_002"] and visible(failure="failed") == ["s-Demo_season_001"]
        frozen = sorted(f"s-{k}" for k, r in run_records(report["still"]).items() if (r.get("metrics") or {}).get("bg_static") == 1.0)
        assert frozen and visible(failure="frozen") == frozen
        assert visible(model="m0", failure="frozen") == []  # the good edit never freezes
        assert browser.run("[...document.querySelectorAll('#s-Demo_time_000 figure.edit')].map(f => f.hidden)") == [False, True]
        visible()
        shot = tmp_path / "report.png"
        browser.screenshot(shot)
    finally:
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    shutil.copy(shot, report["index"].parent / "screenshot.png")
