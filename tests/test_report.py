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
        append_jsonl(
            good / "judge.jsonl",
            {
                "id": sample_id,
                "theme": record["theme"],
                "status": "ok",
                "judge_model": "test-judge",
                "rubric": "sparkle",
                "rubric_version": "sparkle-v1",
                "judged_at": "2026-01-01T00:00:00.000000000Z",
                "answers": ["Instruction Compliance: 5 </pre><b>bold?</b>"],
                "judge": {
                    "judge_overall": 4.5,
                    "judge_instruction": 5,
                    "judge_visual_quality": 4,
                    "judge_fg_integrity": 5,
                    "judge_fg_motion": 4,
                    "judge_bg_dynamics": 4,
                    "judge_bg_quality": 5,
                },
            },
        )
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
    assert text.count('<img src="data:image/svg+xml;base64,') == 2  # radar and bars


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
        measured = browser.run(
            "[...document.querySelectorAll('#board tbody.measured tr')].map(r => r.cells[0].textContent)"
        )
        paper = browser.run("[...document.querySelectorAll('#board tbody.paper tr')].map(r => r.cells[0].textContent)")
        assert measured == ["reference", "still-composite"] and paper == [
            "Kiwi-Editpaper",
            "Kiwi-Sparklepaper",
            "Lucy-Edit-1.1paper",
        ]
        browser.run("[...document.querySelectorAll('#board thead th')].find(th => th.textContent === 'fPSNR↑').click()")
        psnr = {
            m: pd.read_csv(report[m] / "summary.csv").set_index("theme").loc["MACRO", "fg_psnr"]
            for m in ("good", "still")
        }
        best_first = (
            ["reference", "still-composite"] if psnr["good"] > psnr["still"] else ["still-composite", "reference"]
        )
        assert (
            browser.run("[...document.querySelectorAll('#board tbody.measured tr')].map(r => r.cells[0].textContent)")
            == best_first
        )
        assert (
            browser.run("document.querySelectorAll('#board tbody.paper tr').length") == 3
        )  # sorted apart, never mixed
        loads = browser.run("""Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
            const timer = setTimeout(() => done('timeout ' + v.src), 20000);
            v.addEventListener('loadeddata', () => {
                clearTimeout(timer); done(v.videoWidth > 0 ? 'ok' : 'empty ' + v.src); });
            v.addEventListener('error', () => { clearTimeout(timer); done('error ' + v.src); });
            v.preload = 'auto'; v.load(); })))""")
        assert loads == ["ok"] * 10
        prompt = browser.run("document.querySelector('#s-Demo_time_000 .prompt').textContent")
        assert prompt == HOSTILE and browser.run("typeof window.__pwned") == "undefined"

        def visible(theme: str = "", model: str = "", failure: str = "") -> list[str]:
            return browser.run(f"""(() => {{
                for (const [id, value] of [['f-theme', {theme!r}], ['f-model', {model!r}],
                                           ['f-failure', {failure!r}]]) {{
                    const select = document.getElementById(id); select.value = value;
                    select.dispatchEvent(new Event('change')); }}
                return [...document.querySelectorAll('article.sample')].filter(a => !a.hidden).map(a => a.id); }})()""")

        assert visible(theme="time") == ["s-Demo_time_000"]
        assert browser.run("document.getElementById('f-count').textContent") == "1 of 4 samples"
        assert visible(failure="missing") == ["s-Demo_style_002"] and visible(failure="failed") == ["s-Demo_season_001"]
        frozen = sorted(
            f"s-{k}"
            for k, r in run_records(report["still"]).items()
            if (r.get("metrics") or {}).get("bg_static") == 1.0
        )
        assert frozen and visible(failure="frozen") == frozen
        assert visible(model="m0", failure="frozen") == []  # the good edit never freezes
        assert browser.run("[...document.querySelectorAll('#s-Demo_time_000 figure.edit')].map(f => f.hidden)") == [
            False,
            True,
        ]
        visible()
        shot = tmp_path / "report.png"
        browser.screenshot(shot)
    finally:
        browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20000
    shutil.copy(shot, report["index"].parent / "screenshot.png")


def _distinct_colours(png: bytes) -> float:
    """Spread of pixel values in a screenshot region: a black, unpainted player is ~0."""
    import cv2
    import numpy as np

    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    return float(image.std())


def test_report_layout_posters_anchor_and_counts_in_chromium(report, tmp_path):
    """Four runs (two pairs with one label and one folder name) and the source: five videos in one
    row at 1400 px; posters painted before anything plays; an anchor shows its card's header below
    the sticky filters; placeholders stay inside their column; rates with their counts; charts with n."""
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("chromium not found (Debian: apt-get install chromium; .ci/run installs it)")
    copies = []
    for run in (report["good"], report["still"]):
        copies.append(tmp_path / "again" / run.name)
        shutil.copytree(run, copies[-1])
    site = tmp_path / "site"
    assert main(["report", str(report["good"]), str(report["still"]), *map(str, copies), "--out", str(site)]) == 0
    text = (site / "index.html").read_text()
    assert "reference (runs/sparkle-reference)" in text and "reference (again/sparkle-reference)" in text
    frozen_cells = re.findall(
        r"<td style=\"background[^>]*>(\d+)% <small class=\"count\">\((\d+)/(\d+)(; \d+ not scored)?\)</small>", text
    )
    assert frozen_cells and all(int(k) <= int(n) for _, k, n, _ in frozen_cells)
    assert ("0", "0", "1", "") in frozen_cells or any(
        n == "1" for _, _, n, _ in frozen_cells
    )  # a theme with 1 scored sample says so
    import base64

    charts = [
        base64.b64decode(uri).decode() for uri in re.findall(r"data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)", text)
    ]
    assert any("(n=4)" in svg for svg in charts) and any("(n=2)" in svg for svg in charts)
    browser = Browser(chromium, tmp_path / "profile", width=1400, height=900)
    try:
        browser.open((site / "index.html").as_uri())
        rows = browser.run("""[...document.querySelectorAll('article.sample')].map(a =>
            new Set([...a.querySelectorAll('.videos > figure')]
                .map(f => Math.round(f.getBoundingClientRect().top))).size)""")
        assert rows == [1, 1, 1, 1]
        assert browser.run("document.querySelectorAll('#s-Demo_time_000 .videos > figure').length") == 5
        overflow = browser.run("""[...document.querySelectorAll('.placeholder')].map(p => {
            const box = p.getBoundingClientRect(), column = p.closest('figure').getBoundingClientRect();
            return p.scrollWidth <= p.clientWidth + 1
                && box.left >= column.left - 1 && box.right <= column.right + 1; })""")
        assert overflow and all(overflow)
        posters = browser.run("""Promise.all([...document.querySelectorAll('video')].map(v => new Promise(done => {
            if (!v.poster) return done('no poster ' + v.src);
            const image = new Image(); image.onload = () => done(image.naturalWidth > 0 ? 'ok' : 'empty');
            image.onerror = () => done('error ' + v.poster); image.src = v.poster; })))""")
        assert posters == ["ok"] * len(posters) and len(posters) == 4 + 2 * (4 + 2)
        browser.run("document.querySelector('#s-Demo_location_000').scrollIntoView()")
        browser.run("new Promise(done => setTimeout(done, 300))")
        box = browser.run("""(() => {
            const r = document.querySelector('#s-Demo_location_000 figure.source video').getBoundingClientRect();
            return [r.x + scrollX, r.y + scrollY, r.width, r.height]; })()""")
        assert browser.run("[...document.querySelectorAll('video')].every(v => v.paused && v.currentTime === 0)")
        shot = browser.page(
            "Page.captureScreenshot",
            {"format": "png", "clip": {"x": box[0], "y": box[1], "width": box[2], "height": box[3], "scale": 1}},
        )
        assert _distinct_colours(base64.b64decode(shot["data"])) > 10  # the poster, not an empty black player
        browser.open((site / "index.html").as_uri() + "#s-Demo_style_002")
        browser.run("new Promise(done => setTimeout(done, 300))")
        header_top, bar_bottom = (
            browser.run("""[document.querySelector('#s-Demo_style_002 header').getBoundingClientRect().top,
            document.querySelector('.filters').getBoundingClientRect().bottom]""")
        )
        assert header_top >= bar_bottom
        browser.screenshot(tmp_path / "layout.png")
    finally:
        browser.close()
    shutil.copy(tmp_path / "layout.png", site / "screenshot.png")
