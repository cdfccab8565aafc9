"""Ranks that say when they are tied, on constructed runs: runs whose paired differences are noise
share a group and a rank range even when one mean is higher; a clearly better run is rank 1; A > B > C
with only A-C separable reads 1-2, 1-3, 2-3 (letters a, ab, b); pure noise over many runs and seeds
separates no more often than alpha allows; the leaderboard, ``table --compare``, the CSV and the
report show it."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sparkle_bench.bench import Bench, Sample, open_bench
from sparkle_bench.cli import main
from sparkle_bench.ranks import ALPHA, default_rank_by, holm, letter_groups, rank_scores, ranked_leaderboard
from sparkle_bench.regress import Scores, run_scores
from sparkle_bench.tables import summarize

from .crafted import ok, write_run


def bench_of(n: int, themes: tuple[str, ...] = ("location", "season")) -> Bench:
    theme = [themes[i % len(themes)] for i in range(n)]
    samples = tuple(Sample(f"Rk_{theme[i]}_{i:03d}", theme[i], "p", Path(f"/nonexistent/{i}.mp4")) for i in range(n))
    return Bench("ranks", Path("/nonexistent"), samples, checksum="r0")


def folder(tmp_path: Path, bench: Bench, label: str, values: np.ndarray, column: str = "bg_dynamics") -> Path:
    records = {s.id: ok(**{column: round(float(v), 6)}) for s, v in zip(bench.samples, values)}
    return write_run(tmp_path / label, bench, records, label=label)


def ranked(runs: list[Path], column: str = "bg_dynamics"):
    return rank_scores({run_scores(run).label: run_scores(run) for run in runs}).metrics[column]


def macro_interval(bench: Bench, run: Path, column: str = "bg_dynamics") -> tuple[float, float]:
    from sparkle_bench.tables import run_records

    row = summarize(bench, run_records(run), "m").set_index("theme").loc["MACRO"]
    return row[column + "_ci_lo"], row[column + "_ci_hi"]


def overlap(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def standard(rng: np.random.Generator, n: int) -> np.ndarray:
    """n values with mean exactly 0 and sd exactly 1: the constructed differences are what they say."""
    x = rng.normal(size=n)
    return (x - x.mean()) / x.std()


@pytest.fixture()
def bench() -> Bench:
    return bench_of(40)


def test_noise_differences_tie_even_with_a_higher_mean(bench, tmp_path):
    """(a) Two runs whose intervals overlap and whose per-sample differences are noise: one group,
    the same rank range, no order, although one mean is higher."""
    rng = np.random.default_rng(3)
    base = 1 + rng.normal(0, 0.5, 40)
    one = folder(tmp_path, bench, "one", base)
    two = folder(tmp_path, bench, "two", base + 0.02 + 0.2 * standard(rng, 40))  # higher by 0.02, spread 0.2
    assert overlap(macro_interval(bench, one), macro_interval(bench, two))
    metric = ranked([one, two])
    assert metric.means["two"] > metric.means["one"]
    assert metric.ranks == {"one": (1, 2), "two": (1, 2)} and metric.letters == {"one": "a", "two": "a"}
    pair = metric.pairs[0]
    assert not pair.separated and pair.p_holm > ALPHA
    # what this comparison could have seen: about 1.96 sd / sqrt(n) of the per-sample differences
    assert pair.detectable == pytest.approx(1.96 * 0.2 / math.sqrt(40), rel=0.15)
    assert pair.detectable > abs(pair.difference)


def test_a_clearly_better_run_is_rank_one_and_the_rest_stay_tied(bench, tmp_path):
    """(b) A run better on every sample by more than its spread is separated from both others."""
    rng = np.random.default_rng(4)
    base = 1 + rng.normal(0, 0.5, 40)
    runs = [
        folder(tmp_path, bench, "best", base + 0.3 + 0.05 * standard(rng, 40)),
        folder(tmp_path, bench, "twin", base + 0.1 * standard(rng, 40)),
        folder(tmp_path, bench, "other", base),
    ]
    metric = ranked(runs)
    assert metric.ranks == {"best": (1, 1), "twin": (2, 3), "other": (2, 3)}
    assert metric.letters == {"best": "a", "twin": "b", "other": "b"}
    assert [p.better() for p in metric.pairs] == ["best", "best", None]


def test_lower_is_better_metrics_rank_the_lowest_first(bench, tmp_path):
    rng = np.random.default_rng(5)
    base = 0.02 + 0.005 * rng.random(40)
    runs = [
        folder(tmp_path, bench, "steady", base, "bg_flicker"),
        folder(tmp_path, bench, "flicker", base + 0.01, "bg_flicker"),
    ]
    assert ranked(runs, "bg_flicker").ranks == {"steady": (1, 1), "flicker": (2, 2)}


def test_a_chain_reads_overlapping_ranges_and_only_the_ends_separate(bench, tmp_path):
    """(c) A > B > C by 0.1 each on samples whose values spread by 1 (every interval overlaps every
    other): A-C is consistent on every sample, A-B and B-C are not, so the ranges are 1-2, 1-3, 2-3.
    Only a paired test sees A-C: the runs' intervals overlap."""
    rng = np.random.default_rng(6)
    base = 1 + rng.normal(0, 1, 40)
    u = 0.5 * standard(rng, 40)
    runs = [
        folder(tmp_path, bench, "A", base + 0.2 + 0.02 * standard(rng, 40)),
        folder(tmp_path, bench, "B", base + 0.1 + u),
        folder(tmp_path, bench, "C", base),
    ]
    assert overlap(macro_interval(bench, runs[0]), macro_interval(bench, runs[2]))
    metric = ranked(runs)
    assert {k: metric.rank_text(k) for k in "ABC"} == {"A": "1-2", "B": "1-3", "C": "2-3"}
    assert metric.letters == {"A": "a", "B": "ab", "C": "b"}
    separated = {(p.first, p.second): p.separated for p in metric.pairs}
    assert separated == {("A", "B"): False, ("A", "C"): True, ("B", "C"): False}


def test_macro_difference_is_the_difference_of_macro_means_on_unbalanced_themes(tmp_path):
    """Pairs are tested on MACRO (mean of theme means), as the table shows it, not the pooled mean."""
    bench = bench_of(30, ("location", "season", "style"))
    small = Bench(
        "ranks", bench.root, tuple(s for s in bench.samples if s.theme != "style" or int(s.id[-3:]) < 6), "r0"
    )  # 10, 10 and 2 samples a theme
    rng = np.random.default_rng(7)
    one = folder(tmp_path, small, "one", rng.normal(1, 0.3, len(small.samples)))
    style = np.array([0.5 * (s.theme == "style") for s in small.samples])
    two = folder(tmp_path, small, "two", rng.normal(1, 0.3, len(small.samples)) + style)
    from sparkle_bench.tables import run_records

    macro = {
        r: summarize(small, run_records(r), "m").set_index("theme").loc["MACRO", "bg_dynamics"] for r in (one, two)
    }
    pair = ranked([one, two]).pairs[0]
    assert pair.difference == pytest.approx(macro[one] - macro[two], abs=2e-4)


def test_too_few_samples_can_detect_nothing_and_never_separate():
    bench = bench_of(4)
    runs = {
        label: Scores(
            "ranks",
            "r0",
            label,
            None,
            {s.id: {"theme": s.theme, "values": {"bg_dynamics": v + i}} for i, s in enumerate(bench.samples)},
        )
        for label, v in (("low", 0.0), ("high", 5.0))
    }
    pair = rank_scores(runs).metrics["bg_dynamics"].pairs[0]
    assert pair.p == pytest.approx(2 / 16) and not pair.separated and pair.detectable == math.inf  # 4 signs: p >= 1/8


def test_holm_and_letters_by_hand():
    assert holm(np.array([0.01, 0.04, 0.03])).tolist() == pytest.approx([0.03, 0.06, 0.06])
    means = {"a": 3.0, "b": 2.0, "c": 1.0, "d": 0.0}
    letters = letter_groups(list(means), [("a", "c"), ("a", "d"), ("b", "d")], means, True)
    assert letters == {"a": "a", "b": "ab", "c": "bc", "d": "c"}


def test_pure_noise_over_many_runs_and_seeds_keeps_false_separations_within_alpha():
    """(d) 5 runs of pure noise (10 pairs a metric), 300 draws: Holm keeps the share of draws with any
    false separation near alpha; unadjusted tests of the same pairs would separate far more often."""
    bench = bench_of(24)
    draws, any_holm, any_raw = 300, 0, 0
    for seed in range(draws):
        rng = np.random.default_rng(1000 + seed)
        base = rng.normal(1, 1, 24)
        runs = {}
        for k in range(5):
            values = base + rng.normal(0, 0.3, 24)
            runs[f"r{k}"] = Scores(
                "ranks",
                "r0",
                f"r{k}",
                None,
                {s.id: {"theme": s.theme, "values": {"bg_dynamics": v}} for s, v in zip(bench.samples, values)},
            )
        pairs = rank_scores(runs, permutations=999, seed=seed).metrics["bg_dynamics"].pairs
        any_holm += any(p.separated for p in pairs)
        any_raw += any(p.p <= ALPHA for p in pairs)
    assert any_holm / draws <= ALPHA + 0.035  # 0.05 + ~2.5 binomial sd of 300 draws
    assert any_raw / draws >= 0.2


@pytest.fixture()
def demo(demo_root):
    return open_bench("demo")


@pytest.fixture()
def demo_runs(demo, tmp_path) -> list[Path]:
    """12 demo samples: ``good`` is better by 0.3 on every sample; ``twin`` and ``other`` differ by noise."""
    rng = np.random.default_rng(11)
    base = 0.5 + rng.normal(0, 0.2, 12)
    values = {"good": base + 0.3 + 0.01 * standard(rng, 12), "twin": base + 0.05 * standard(rng, 12), "other": base}
    runs = []
    for label, column in values.items():
        records = {
            s.id: ok(bg_dynamics=round(float(v), 6), fg_psnr=30.0 + i % 3)
            for i, (s, v) in enumerate(zip(demo.samples, column))
        }
        runs.append(write_run(tmp_path / label, demo, records, label=label))
        assert main(["table", str(runs[-1]), "--format", "csv"]) == 0
    return runs


def test_leaderboard_csv_terminal_and_markdown_show_the_ties(demo_runs, tmp_path, capsys, monkeypatch):
    """(e) The CSV carries rank and letters per metric; the terminal view a rank column, letters in
    the cells, the legend and each pair's verdict; published rows stay unranked with a line saying why."""
    capsys.readouterr()
    board = tmp_path / "board.csv"
    runs = list(map(str, demo_runs))
    assert main(["leaderboard", *runs, "--published", "sparkle_bench", "--csv", str(board), "--format", "csv"]) == 0
    err = capsys.readouterr().err.replace("\n", " ")
    assert "published rows: no per-sample values" in err
    frame = pd.read_csv(board).set_index("model")
    columns = frame.columns.tolist()
    assert columns[columns.index("bg_dynamics") : columns.index("bg_dynamics") + 5] == [
        "bg_dynamics",
        "bg_dynamics_ci_lo",
        "bg_dynamics_ci_hi",
        "bg_dynamics_rank",
        "bg_dynamics_group",
    ]
    assert frame.loc[["good", "other", "twin"], "rank"].tolist() == ["1", "2-3", "2-3"]  # bg_dynamics: no judge here
    assert frame.loc[["good", "other", "twin"], "bg_dynamics_group"].tolist() == ["a", "b", "b"]
    assert frame.loc[["good", "other", "twin"], "fg_psnr_rank"].tolist() == ["1-3"] * 3  # identical fg_psnr: all tied
    assert frame.loc["Kiwi-Sparkle", ["rank", "bg_dynamics_rank"]].isna().all()
    assert frame.index.tolist()[:3] == ["good", "other", "twin"]  # rows stay in name order: no order implied

    monkeypatch.setenv("COLUMNS", "150")
    assert main(["leaderboard", *map(str, demo_runs)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("twin ") and "31.0" in line)
    assert row.split() == ["twin", "2-3", "31.0", "a", "0.536", "b"]  # rank range, then each value's letters
    assert "a, b: runs sharing a letter are not separable" in out
    verdicts = {line.split()[0] + line.split()[2]: line for line in out.splitlines() if " vs " in line}
    assert "tied" in verdicts["twinother"] or "tied" in verdicts["othertwin"]
    assert "good better" in verdicts["goodtwin"]
    assert main(["leaderboard", *map(str, demo_runs), "--format", "md", "--rank-by", "fg_psnr"]) == 0
    md = capsys.readouterr().out
    good = next(line for line in md.splitlines() if line.startswith("| demo | good"))
    assert "| 1-3 |" in good and " a |" in good and "a, b: runs sharing" in md
    assert main(["leaderboard", *map(str, demo_runs), "--rank-by", "judge_overall"]) == 2  # not ranked: says which are


def test_table_compare_and_summary_csvs(demo_runs, tmp_path, capsys):
    capsys.readouterr()
    assert main(["table", str(demo_runs[1]), "--compare", str(demo_runs[0]), str(demo_runs[2]), "--format", "csv"]) == 0
    frame = pd.read_csv(io.StringIO(capsys.readouterr().out)).set_index("model")
    assert frame["rank"].to_dict() == {"good": "1", "twin": "2-3", "other": "2-3"}
    assert (demo_runs[1] / "summary.csv").is_file()
    csv = tmp_path / "other.csv"
    csv.write_text((demo_runs[2] / "summary.csv").read_text())
    assert main(["leaderboard", str(demo_runs[0]), str(demo_runs[1]), str(csv), "--format", "csv"]) == 0
    out, err = capsys.readouterr()
    assert "other: no per-sample values (summary CSVs, published numbers), shown without ranks" in " ".join(err.split())
    frame = pd.read_csv(io.StringIO(out), dtype={"rank": str}).set_index("model")
    assert frame.loc["good", "rank"] == "1" and frame.loc["twin", "rank"] == "2" and pd.isna(frame.loc["other", "rank"])


def test_report_shows_rank_ranges_letters_and_pairs(demo_runs, tmp_path):
    from sparkle_bench.report import build_report

    html = build_report(demo_runs, tmp_path / "site").read_text()
    board = html[html.index('id="board"') : html.index("</table>", html.index('id="board"'))]
    assert "<th>rank</th>" in board
    twin = board[board.index("<td>twin</td>") :]
    assert twin.startswith('<td>twin</td><td data-v="2.003">2-3</td>') and "> b</small>" in twin[: twin.index("</tr>")]
    assert "runs sharing a letter are not separable" in html
    pairs = html[html.index('id="pairs"') :]
    assert "good better" in pairs and "tied" in pairs


def test_ranked_leaderboard_is_reproducible(demo_runs):
    first, again = ranked_leaderboard(demo_runs), ranked_leaderboard(demo_runs)
    assert first.board.equals(again.board) and first.rank_by == "bg_dynamics"


def test_judge_columns_rank_only_under_one_judge_and_lead_the_default():
    bench = bench_of(20)

    def scores(label: str, judge: str, shift: float) -> Scores:
        values = [{"bg_dynamics": 0.5 + 0.01 * i, "judge_overall": 3.0 + shift + 0.1 * (i % 3)} for i in range(20)]
        samples = {s.id: {"theme": s.theme, "values": v} for s, v in zip(bench.samples, values)}
        return Scores("ranks", "r0", label, judge, samples)

    same = rank_scores({"a": scores("a", "j | v1", 1.0), "b": scores("b", "j | v1", 0.0)})
    assert default_rank_by(same) == "judge_overall"
    assert same.metrics["judge_overall"].ranks == {"a": (1, 1), "b": (2, 2)}
    other = rank_scores({"a": scores("a", "j | v1", 1.0), "b": scores("b", "k | v1", 0.0)})
    assert "judge_overall" not in other.metrics and default_rank_by(other) == "bg_dynamics"
    assert other.notes == ["judge columns not ranked: the runs were judged by different judges (j | v1; k | v1)"]
