"""Ranks that say when they are tied: which runs of a leaderboard the data can tell apart, per metric.

A leaderboard sorted by its means reads as a strict order even when two runs differ by less than the
noise of the samples they were scored on. Here every pair of runs is tested on the samples every
ranked run scored, paired by sample (docs/ranking.md):

- test: two-sided sign-flip permutation test of the MACRO difference (mean over themes of the theme
  means of the per-sample differences, i.e. the difference of the two runs' MACRO means on those
  samples). If the runs are exchangeable on each sample, each difference's sign is a coin flip, so
  the test needs no assumption about the metric's distribution; weights follow the themes, so MACRO
  is tested as it is shown. Seeded per metric: the same runs give the same verdicts.
- multiplicity: Holm over the pairs of one metric, so the chance that a metric shows any false
  separation stays at most ``alpha``; metrics are separate rankings and are not corrected together.
- rank range: best = 1 + runs separated above, worst = k - runs separated below; letters (compact
  letter display, insert-and-absorb): runs that share a letter are not separable.
- detectable: the smallest MACRO difference a pair would show separated with this many samples and
  this spread of its per-sample differences: the 1 - alpha/m quantile of the sign-flip distribution
  of the centred differences (Holm's strictest step, so a true difference that large is separated
  whatever the other pairs do); infinite when even the most extreme signs cannot reach alpha/m.
"""

from __future__ import annotations

import math
import string
import zlib
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from .display import column_order, higher_is_better
from .regress import Scores, run_scores
from .tables import RANK_COLUMN, RANK_SUFFIXES, leaderboard_inputs, merge_leaderboard

ALPHA = 0.05
PERMUTATIONS = 9999  # random sign vectors per metric; fewer samples than log2 of it are enumerated exactly
CHUNK = 2000  # sign vectors multiplied at once (memory: CHUNK x samples)
LETTERS = string.ascii_lowercase + string.ascii_uppercase


@dataclass(frozen=True)
class Pair:
    """One comparison of one metric: ``first`` minus ``second`` on the shared samples."""

    column: str
    first: str
    second: str
    n: int
    difference: float  # MACRO of the per-sample differences, in the metric's unit
    detectable: float  # smallest |difference| separated with this n and spread (inf: none can be)
    p: float  # two-sided sign-flip p-value
    p_holm: float  # Holm-adjusted over the metric's pairs
    separated: bool

    def better(self) -> str | None:
        """The label of the better run when separated."""
        if not self.separated:
            return None
        return self.first if (self.difference > 0) == bool(higher_is_better(self.column)) else self.second


@dataclass
class MetricRanking:
    column: str
    n: int  # samples every ranked run has a value for
    means: dict[str, float]  # MACRO on those samples
    ranks: dict[str, tuple[int, int]]  # label -> (best, worst) rank the tests allow
    letters: dict[str, str]
    pairs: list[Pair]

    def rank_text(self, label: str) -> str:
        best, worst = self.ranks[label]
        return str(best) if best == worst else f"{best}-{worst}"


@dataclass
class Ranking:
    metrics: dict[str, MetricRanking] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was not ranked, and why (one line each)


def holm(p: np.ndarray) -> np.ndarray:
    """Holm's step-down adjusted p-values (monotone, capped at 1)."""
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    steps = np.maximum.accumulate((len(p) - np.arange(len(p))) * p[order])
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(steps, 1.0)
    return adjusted


def _signs(n: int, permutations: int, rng: np.random.Generator):
    """Blocks of +/-1 sign vectors: all 2^n when that is no more than asked (then exact), else random."""
    if 2**n <= permutations + 1:
        codes = np.arange(2**n)[:, None] >> np.arange(n)
        yield (codes & 1) * 2.0 - 1.0
        return
    for start in range(0, permutations, CHUNK):  # random bytes, one sign a bit: 4x faster than an integer each
        random = rng.integers(0, 256, (min(CHUNK, permutations - start), (n + 7) // 8), dtype=np.uint8)
        yield np.unpackbits(random, axis=1)[:, :n] * 2.0 - 1.0


def sign_flip(
    diffs: np.ndarray, weights: np.ndarray, level: float, permutations: int = PERMUTATIONS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided p-values of ``weights @ diffs`` for each column of ``diffs`` (samples x pairs) and
    each pair's detectable difference at ``level`` (see the module's docstring)."""
    n = len(weights)
    observed = weights @ diffs
    columns = np.concatenate([diffs, diffs - observed], axis=1) * weights[:, None]
    null = np.abs(np.concatenate([signs @ columns for signs in _signs(n, permutations, np.random.default_rng(seed))]))
    exact = 2**n <= permutations + 1
    pairs = diffs.shape[1]
    reached = (null[:, :pairs] >= np.abs(observed) * (1 - 1e-9) - 1e-12).sum(axis=0)
    p = reached / len(null) if exact else (reached + 1) / (len(null) + 1)
    smallest = 2 / 2**n if exact else 1 / (permutations + 1)  # the most extreme signs (and their mirror)
    detectable = np.quantile(null[:, pairs:], 1 - level, axis=0) if smallest <= level else np.full(pairs, math.inf)
    return np.minimum(p, 1.0), detectable


def letter_groups(
    labels: list[str], separated: list[tuple[str, str]], means: dict[str, float], higher: bool
) -> dict[str, str]:
    """Compact letter display (Piepho's insert-and-absorb): runs that share a letter are not
    separated; ``a`` goes to the group holding the best mean."""
    groups = [frozenset(labels)]
    for first, second in separated:
        split = []
        for group in groups:
            split += [group - {first}, group - {second}] if first in group and second in group else [group]
        unique = set(split)
        groups = [g for g in unique if not any(g < other for other in unique)]
    best = {g: max(means[x] if higher else -means[x] for x in g) for g in groups}
    ordered = sorted(groups, key=lambda g: (-best[g], sorted(g)))
    return {label: "".join(LETTERS[i % len(LETTERS)] for i, g in enumerate(ordered) if label in g) for label in labels}


def _macro_weights(themes: list[str]) -> np.ndarray:
    """Per-sample weights that turn a weighted sum into the mean of theme means."""
    _, index, counts = np.unique(themes, return_inverse=True, return_counts=True)
    return 1.0 / (len(counts) * counts[index])


def rank_metric(
    column: str,
    values: dict[str, dict[str, float]],
    themes: dict[str, str],
    alpha: float = ALPHA,
    permutations: int = PERMUTATIONS,
    seed: int = 0,
) -> MetricRanking | None:
    """Rank the runs of ``values`` (label -> sample id -> value) on the samples they all have;
    None for fewer than two runs or two shared samples."""
    labels = [label for label, by_id in values.items() if by_id]
    shared = sorted(set.intersection(*(set(values[label]) for label in labels))) if labels else []
    if len(labels) < 2 or len(shared) < 2:
        return None
    higher = bool(higher_is_better(column))
    weights = _macro_weights([themes.get(i, "?") for i in shared])
    matrix = np.array([[float(values[label][i]) for i in shared] for label in labels]).T  # samples x runs
    pairs = list(combinations(range(len(labels)), 2))
    diffs = np.stack([matrix[:, a] - matrix[:, b] for a, b in pairs], axis=1)
    level = alpha / len(pairs)
    p, detectable = sign_flip(diffs, weights, level, permutations, zlib.crc32(f"{column}|{seed}".encode()))
    adjusted = holm(p)
    difference = np.round(weights @ diffs, 12) + 0.0  # no "-0.0000" for runs that do not differ
    found = [
        Pair(
            column,
            labels[a],
            labels[b],
            len(shared),
            float(difference[k]),
            float(detectable[k]),
            float(p[k]),
            float(adjusted[k]),
            bool(adjusted[k] <= alpha),
        )
        for k, (a, b) in enumerate(pairs)
    ]
    better = [
        (pair.better(), pair.second if pair.better() == pair.first else pair.first) for pair in found if pair.separated
    ]  # (winner, loser)
    ranks = {
        label: (
            1 + sum(loser == label for _, loser in better),
            len(labels) - sum(winner == label for winner, _ in better),
        )
        for label in labels
    }
    means = {label: float(weights @ matrix[:, k]) for k, label in enumerate(labels)}
    return MetricRanking(column, len(shared), means, ranks, letter_groups(labels, better, means, higher), found)


def rank_scores(
    runs: dict[str, Scores], alpha: float = ALPHA, permutations: int = PERMUTATIONS, seed: int = 0
) -> Ranking:
    """Every score column with a direction, ranked over the runs that have it (label -> scores);
    judge columns only when every judged run was judged by the same judge and rubric."""
    ranking = Ranking()
    themes = {i: s["theme"] for scores in runs.values() for i, s in scores.samples.items()}
    columns = sorted(
        {c for scores in runs.values() for s in scores.samples.values() for c in s["values"]}, key=column_order
    )
    judges = {scores.judge for scores in runs.values() if scores.judge}
    if len(judges) > 1:
        ranking.notes.append(
            f"judge columns not ranked: the runs were judged by different judges ({'; '.join(sorted(judges))})"
        )
    too_few = []
    for column in columns:
        if higher_is_better(column) is None or (column.startswith("judge_") and len(judges) > 1):
            continue
        values = {
            label: {i: s["values"][column] for i, s in scores.samples.items() if s["values"].get(column) is not None}
            for label, scores in runs.items()
        }
        ranked = rank_metric(column, values, themes, alpha, permutations, seed)
        if ranked is not None:
            ranking.metrics[column] = ranked
        elif sum(bool(v) for v in values.values()) > 1:
            too_few.append(column)
    if too_few:
        ranking.notes.append(f"not ranked, fewer than 2 samples have a value in every run: {', '.join(too_few)}")
    return ranking


def default_rank_by(ranking: Ranking) -> str | None:
    """The judge's overall score when ranked, else ``bg_dynamics`` (the benchmark's headline: a
    living background), else the first ranked column."""
    for column in ("judge_overall", "bg_dynamics"):
        if column in ranking.metrics:
            return column
    return next(iter(ranking.metrics), None)


def with_ranks(board: pd.DataFrame, ranking: Ranking, rank_by: str | None = None) -> pd.DataFrame:
    """The board with ``<metric>_rank`` (rank range), ``<metric>_group`` (letters) and ``rank`` (of
    ``rank_by``) on the MACRO rows of ranked runs; other rows stay empty."""
    if rank_by is not None and rank_by not in ranking.metrics:
        raise ValueError(f"--rank-by {rank_by}: not ranked; ranked columns: {', '.join(ranking.metrics) or 'none'}")
    board = board.copy()
    rows = board["theme"].eq("MACRO") & board["source"].ne("paper")
    if not ranking.metrics or not rows.any():
        return board
    for column, ranked in ranking.metrics.items():
        for suffix, text in zip(RANK_SUFFIXES, (ranked.rank_text, ranked.letters.get)):
            board[column + suffix] = [
                text(m) if row and m in ranked.ranks else None for m, row in zip(board["model"], rows)
            ]
    rank_by = rank_by or default_rank_by(ranking)
    board.insert(list(board.columns).index("theme") + 1, RANK_COLUMN, board[rank_by + RANK_SUFFIXES[0]])
    return board


def pairs_table(ranking: Ranking, columns: list[str] | None = None) -> pd.DataFrame:
    """One row per comparison: the MACRO difference, what it could detect, Holm's p, the verdict."""
    rows = []
    for column in list(ranking.metrics) if columns is None else columns:
        for pair in ranking.metrics[column].pairs:
            verdict = f"{pair.better()} better" if pair.separated else "tied"
            rows.append(
                {
                    "metric": column,
                    "runs": f"{pair.first} vs {pair.second}",
                    "verdict": verdict,
                    "n": pair.n,
                    "difference": pair.difference,
                    "detectable": pair.detectable,
                    "p_holm": pair.p_holm,
                }
            )
    return pd.DataFrame(rows, columns=["metric", "runs", "verdict", "n", "difference", "detectable", "p_holm"])


@dataclass
class RankedBoard:
    board: pd.DataFrame
    ranking: Ranking
    rank_by: str | None


def add_ranks(
    board: pd.DataFrame, runs: list[Path], labels: list[str], rank_by: str | None = None, alpha: float = ALPHA
) -> RankedBoard:
    """Rank the run folders among ``runs`` (named ``labels`` on the board); summary CSVs and
    published rows have no per-sample values and stay unranked, with a note saying so."""
    from .runs import PROVENANCE_FILE

    folders = {label: Path(run) for run, label in zip(runs, labels) if (Path(run) / PROVENANCE_FILE).is_file()}
    ranking = rank_scores({label: run_scores(run) for label, run in folders.items()}, alpha)
    paper = bool("source" in board and board["source"].eq("paper").any())
    unranked = [label for label in labels if label not in folders] + (["published rows"] if paper else [])
    if unranked:
        ranking.notes.insert(
            0, f"{', '.join(unranked)}: no per-sample values (summary CSVs, published numbers), shown without ranks"
        )
    if len(folders) < 2 and len(labels) + paper > 1:
        ranking.notes.append("no ranks: ranks need at least two run folders (with samples.jsonl or judge.jsonl)")
    board = with_ranks(board, ranking, rank_by)
    return RankedBoard(board, ranking, rank_by or default_rank_by(ranking))


def ranked_leaderboard(
    runs: list[Path],
    published: list[str] = (),
    common: bool = False,
    themes: str = "MACRO",
    rank_by: str | None = None,
    alpha: float = ALPHA,
) -> RankedBoard:
    """``sparkle-bench leaderboard`` (and ``table --compare``): the merged board with ranks."""
    inputs = leaderboard_inputs(list(runs), list(published), common)
    labels = [str(table["model"].iloc[0]) for table in inputs[: len(runs)]]
    return add_ranks(merge_leaderboard(inputs, themes), list(runs), labels, rank_by, alpha)
