"""``sparkle-bench``: evaluate background-replacement models on Sparkle-Bench, OpenVE-Bench or the demo bench.

Stages (each reads the previous stage's files, so any can be re-run alone):
``infer`` (model -> edited videos), ``score`` (videos -> samples.jsonl), ``judge`` (videos -> a VLM
judge's judge.jsonl), ``table`` (-> summary.csv); ``eval`` runs infer, score and table.
Results: ``leaderboard`` (runs side by side), ``report`` (a static HTML site), ``baseline`` and
``regress`` (a CI gate against a committed baseline).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import sys
from pathlib import Path

from .log import console

DEFAULT_RUNS = Path("runs")
FORMATS = ("table", "csv", "md", "json")  # how tables are printed (sparkle_bench.display.show)
# Command groups that live with their own package; each module has ``register(subparsers)`` and
# imports nothing heavy at module level, so ``--help`` and ``ls`` stay fast.
COMMAND_GROUPS = ("sparkle_bench.synth.cli", "sparkle_bench.train.cli")


def _csv_list(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _bench_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("bench")
    group.add_argument(
        "--bench", default="demo", help="'demo', a Sparkle-Bench folder, or an OpenVE-Bench CSV (default: demo)"
    )
    group.add_argument("--themes", type=_csv_list, help="comma-separated themes")
    group.add_argument("--ids", type=_csv_list, help="comma-separated sample ids")
    group.add_argument("--limit", type=int, help="at most N samples, stratified by theme, deterministic")
    group.add_argument(
        "--subset", help="a named subset shipped with the package (e.g. smoke; `ls subsets`) or a subset .json file"
    )
    group.add_argument("--masks", type=Path, help="folder of foreground masks ({theme}/{id}.npz or {id}.npz)")


def _model_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip().replace("-", "_"), value.strip()


def _label_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--label",
        help="the run's name in tables and reports (default: the adapter's name, or the folder's for precomputed:DIR)",
    )


def _display_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--columns",
        type=_csv_list,
        help="comma-separated columns to show: names (fg_psnr), short headers (fPSNR) "
        "or groups (counts, metrics, judge)",
    )
    group.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="table: fitted to the terminal, grouped, with a legend (default); csv, md, json: every column, for pipes",
    )
    group.add_argument(
        "--ci",
        action="store_true",
        help="show each mean with ± half its 95%% bootstrap interval over samples "
        "(csv and json always carry the bounds)",
    )


def _rank_by_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rank-by",
        metavar="METRIC",
        help="the metric of the rank column (default: judge_overall when judged, else bg_dynamics); "
        "every ranked metric's cell carries letters: runs sharing one are not separable "
        "(docs/ranking.md)",
    )


def _tolerance(text: str) -> tuple[str, float]:
    name, value = _model_option(text)
    try:
        return name, float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected METRIC=NUMBER, got {text!r}") from None


def _run_args(parser: argparse.ArgumentParser, model_required: bool = True) -> None:
    parser.add_argument(
        "--model",
        required=model_required,
        help="adapter: identity, still-composite, precomputed:DIR, kiwi-edit, ... (see `ls models`)",
    )
    parser.add_argument("--run-name", help="folder under --runs-dir (default: <bench>-<model>)")
    _label_arg(parser)
    parser.add_argument("--runs-dir", type=Path, default=DEFAULT_RUNS)
    parser.add_argument("--shard", help="i/N: this process's share (default: RANK/WORLD_SIZE from torchrun)")
    group = parser.add_argument_group("generation (models that generate)")
    group.add_argument(
        "--reference",
        action="store_true",
        help="give the model the bench's ref_images/ as reference image (own run name: <bench>-<model>-ref)",
    )
    group.add_argument("--offload", action="store_true", help="model CPU offload (fits 24 GB cards; slower)")
    group.add_argument(
        "--model-option",
        type=_model_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="adapter setting, repeatable: steps=20, seed=1, max_frames=49, pixel_budget=409600, fps=16, "
        "dtype=float32, ...",
    )


def _score_args(parser: argparse.ArgumentParser) -> None:
    from .metrics import DEFAULT_METRICS

    parser.add_argument(
        "--metrics",
        type=_csv_list,
        default=list(DEFAULT_METRICS),
        help=f"comma-separated (default: {','.join(DEFAULT_METRICS)})",
    )
    parser.add_argument("--work-height", type=int, default=288, help="frames are scored at this height (default 288)")
    parser.add_argument(
        "--align",
        choices=["crop", "resize"],
        default="crop",
        help="an edit of another aspect (1280x704 for 1280x720): crop the source and mask to it, centred, "
        "as the official protocol does (default), or stretch the edit to the source's aspect",
    )
    parser.add_argument(
        "--workers",
        type=_positive,
        help="scoring processes (default: one per core this process may use); 1 scores in this process",
    )
    parser.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 if any sample failed, is missing, is short or of another orientation, "
        "or a metric was unavailable (for CI gates)",
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


# Flags -> the library's settings (sparkle_bench.api); each command is one call to it, then printing.


def _selection(args: argparse.Namespace):
    from .api import Selection

    return Selection(args.bench, args.themes, args.ids, args.limit, args.subset, args.masks)


def _run_settings(args: argparse.Namespace):
    from .api import RunSettings

    return RunSettings(
        args.model,
        _selection(args),
        dict(args.model_option),
        args.reference,
        args.offload,
        args.runs_dir,
        args.run_name,
        args.label,
        args.shard,
    )


def _score_settings(args: argparse.Namespace):
    from .api import ScoreSettings

    return ScoreSettings(args.metrics, args.work_height, args.align, args.workers)


def _judge_options(args: argparse.Namespace):
    """The judge flags as :class:`~sparkle_bench.judge.setup.JudgeOptions`; None without ``--judge``."""
    from .judge.setup import JudgeOptions

    if args.judge is None:
        return None
    names = [f.name for f in dataclasses.fields(JudgeOptions) if f.name != "backend"]
    return JudgeOptions(backend=args.judge, **{name: getattr(args, name) for name in names})


def _print_table(result, args: argparse.Namespace, shown: bool = True) -> int:
    """The table stage's output: notes, the table (in ``--format``, unless not ``shown``), why any
    metric had no value."""
    from .display import show
    from .log import warn

    for line in result.notes:
        warn(line)
    if shown:
        show(result.summary, f"{result.run_dir}/summary.csv", args.format, args.columns, args.ci)
    for line in result.unavailable:
        warn(line)
    return _exit(result)


def _exit(result) -> int:
    """The result's exit code, after its one-line cause when the stage set one (nothing scored)."""
    if result.error:
        console.print(f"[red]error[/]: {result.error}", soft_wrap=True)
    return result.exit_code


def _memory_dry_run(args: argparse.Namespace) -> int | None:
    """``--dry-run`` on infer/eval: the GPU memory the model needs, printed before anything loads
    (None for a model with no estimate: eval's ``--dry-run`` then is the judge's alone)."""
    from .api import memory_plan

    plan = memory_plan(_run_settings(args))
    if plan is None:
        return None
    for line in plan:
        console.print(line)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from .api import EvalSettings, run_eval

    if args.dry_run and (code := _memory_dry_run(args)) is not None:
        return code
    settings = EvalSettings(
        _run_settings(args), _score_settings(args), _judge_options(args), args.missing_policy, args.strict
    )
    result = run_eval(settings)
    if result.summary is None:
        if not result.exit_code and result.shard != (0, 1):
            shard = result.shard
            console.print(
                f"shard {shard[0]}/{shard[1]} done; when all shards finish: sparkle-bench table {result.run_dir}"
            )
        return _exit(result)
    return _print_table(result, args)


def cmd_infer(args: argparse.Namespace) -> int:
    from .api import infer

    if args.dry_run:
        if _memory_dry_run(args) is None:
            console.print(f"{args.model}: no memory estimate for this model")
        return 0
    return infer(_run_settings(args), args.strict).exit_code


def cmd_score(args: argparse.Namespace) -> int:
    from .api import score

    result = score(_run_settings(args), _score_settings(args), strict=args.strict)
    return _exit(result) if result.summary is None else _print_table(result, args)


def cmd_table(args: argparse.Namespace) -> int:
    from .api import summarize

    result = summarize(args.run, missing_policy=args.missing_policy, strict=args.strict, label=args.label)
    code = _print_table(result, args, shown=not args.compare)
    if args.compare:
        from .ranks import ranked_leaderboard

        ranked = ranked_leaderboard([args.run, *args.compare], rank_by=args.rank_by)
        _show_ranked(ranked, f"{args.run} beside {len(args.compare)} other run(s)", args)
    return code


def cmd_judge(args: argparse.Namespace) -> int:
    from .api import judge

    result = judge(_run_settings(args), _judge_options(args), missing_policy=args.missing_policy, strict=args.strict)
    return _exit(result) if result.summary is None else _print_table(result, args)


def cmd_agreement(args: argparse.Namespace) -> int:
    from .agreement import agreement_table
    from .display import show

    table = agreement_table(args.run)
    if table.empty:
        console.print(
            f"[red]error[/]: {args.run} needs both samples.jsonl (sparkle-bench score) "
            "and judge.jsonl (sparkle-bench judge)"
        )
        return 2
    table.to_csv(args.run / "agreement.csv", index=False, float_format="%.4f")
    show(
        table,
        f"{args.run}/agreement.csv: Spearman rho, judge dimension vs objective metric (oriented so + = agree)",
        args.format,
        args.columns,
        args.ci,
    )
    return 0


def _show_ranked(ranked, title: str, args: argparse.Namespace) -> None:
    """A ranked board, its notes, and (terminal view) the comparisons of the metric it is ranked by."""
    from .display import show
    from .log import warn
    from .ranks import pairs_table

    for line in ranked.ranking.notes:
        warn(line)
    title += f" · rank by {ranked.rank_by}" if ranked.rank_by else ""
    show(ranked.board, title, args.format, args.columns, args.ci)
    if args.format == "table" and ranked.rank_by:
        show(
            pairs_table(ranked.ranking, [ranked.rank_by]),
            "pairs on their shared samples (difference: of the MACRO "
            "means; detectable: the smallest difference this n and spread separate)",
        )


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .log import warn
    from .ranks import ranked_leaderboard
    from .tables import coverage_warning, write_table

    coverage = coverage_warning(args.runs)
    if coverage and not args.common:
        warn(coverage)
    themes = "all" if args.all_themes else "MACRO"
    ranked = ranked_leaderboard(args.runs, args.published or [], args.common, themes, args.rank_by)
    if args.csv:
        write_table(ranked.board, args.csv)
        console.print(f"wrote {args.csv}")
    _show_ranked(ranked, "leaderboard (on the samples every run scored)" if args.common else "leaderboard", args)
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from .report import build_report

    path = build_report(args.runs, args.out, args.published or [], args.title, args.copy_media)
    console.print(f"report written to {path} (open it in a browser; no server needed)")
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from .regress import write_baseline

    scores = write_baseline(args.run, args.out)
    columns = {c for s in scores.samples.values() for c in s["values"]}
    console.print(
        f"baseline written to {args.out}: {len(scores.samples)} samples, {len(columns)} score columns "
        f"(judge: {scores.judge or 'none'}); commit it and gate with `sparkle-bench regress RUN --baseline {args.out}`"
    )
    return 0


def cmd_regress(args: argparse.Namespace) -> int:
    from .display import show
    from .log import warn
    from .regress import (
        ALL,
        MIN_SAMPLES,
        check_comparable,
        compare,
        load_scores,
        seed_tolerances,
        untested_columns,
        untested_worse,
    )

    run, baseline = load_scores(args.run), load_scores(args.baseline)
    warnings = check_comparable(run, baseline)  # refuses other benches and other samples
    tolerances = dict(args.tolerance)
    if args.seed_run:
        seed = load_scores(args.seed_run)
        check_comparable(seed, baseline)
        tolerances = seed_tolerances(baseline, seed, tolerances)
    table = compare(run, baseline, tolerances, args.alpha)
    for line in warnings + untested_columns(baseline, tolerances) + [untested_worse(table)]:
        if line:
            warn(line)
    worse = table[table["regressed"].astype(bool)]
    what = (
        f"{run.label} vs baseline {baseline.label}, {len(run.samples)} samples: "
        f"a comparison fails when its mean got worse "
        f"by more than the tolerance, p < {args.alpha:g} (one-sided paired t-test against the tolerance; "
        f"groups under {MIN_SAMPLES} samples not tested)"
    )
    if args.format != "table":
        show(table, what, args.format)
    else:
        overall = table[table["theme"].eq(ALL) & (table["lost"].isna() if "lost" in table else True)]
        show(
            overall[["metric", "n", "baseline", "run", "change", "tolerance", "detectable", "p"]],
            "every metric over all samples "
            "(detectable: the smallest worsening of the mean that fails with this many samples)",
        )
    if worse.empty:
        console.print(f"no regression: {what}", soft_wrap=True)
        return 0
    if args.format == "table":
        view = worse[
            [c for c in ("metric", "theme", "n", "baseline", "run", "change", "tolerance", "p", "lost") if c in worse]
        ]
        show(view.dropna(axis=1, how="all"), f"got worse: {what}")
    console.print(
        f"[red]regression[/]: {len(worse)} of {len(table)} comparisons got worse beyond tolerance "
        f"({', '.join(dict.fromkeys(worse['metric']))})",
        soft_wrap=True,
    )
    return 1


def cmd_ls(args: argparse.Namespace) -> int:
    if args.what == "models":
        from .models import MODELS as registry
    elif args.what == "metrics":
        from .metrics import METRICS as registry
    else:
        from .subsets import subset_names

        print("\n".join(subset_names()))
        return 0
    print("\n".join(f"{name:18s} {registry.target(name)}" for name in registry.names()))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import build_demo_bench

    root = build_demo_bench(args.root, seed=args.seed)
    console.print(f"demo bench written to {root}")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from .download import download_bench, download_model

    if args.model:
        download_model(args.model, dict(args.model_option))
        return 0
    if args.root is None:
        console.print("[red]error[/]: download needs --model NAME, or --bench with --root DIR")
        return 2
    root = download_bench(args.bench or "sparkle", args.root, args.themes)
    console.print(f"{args.bench or 'sparkle'} downloaded to {root}")
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    from .api import select_bench
    from .maskgen.detector import GroundingDetector
    from .maskgen.generate import generate_masks
    from .maskgen.propagate import Sam2Propagator, load_sam2_video_predictor

    bench = select_bench(_selection(args))
    out = args.out or bench.root / "masks"
    settings = {
        "detector": args.detector,
        "queries": args.queries,
        "box_threshold": args.box_threshold,
        "max_boxes": args.max_boxes,
        "sam2": args.sam2,
        "sam2_config": args.sam2_config,
        "anchor_fps": args.anchor_fps,
    }
    detector = GroundingDetector(args.detector, tuple(args.queries), args.box_threshold, args.max_boxes, args.device)
    propagator = Sam2Propagator(load_sam2_video_predictor(args.sam2, args.sam2_config, args.device))
    counts = generate_masks(bench, out, detector, propagator, settings, args.anchor_fps)
    return 3 if args.strict and counts.failed else 0


def cmd_shortcut_table(args: argparse.Namespace) -> int:
    from .shortcut_table import problems, shortcut_table, summarise, to_markdown

    table = shortcut_table(
        args.real, args.work_height, args.frames, progress=lambda name: console.print(f"scored {name}")
    )
    if args.out:
        table.to_csv(args.out, index=False)
    print(to_markdown(summarise(table)))
    failed = problems(table)
    for line in failed:
        console.print(f"[red]FAIL[/] {line}")
    console.print(
        f"{len(failed)} problem(s)" if failed else "every shortcut reads frozen; every Sparkle edit reads living"
    )
    return 1 if failed else 0


def cmd_validate_metrics(args: argparse.Namespace) -> int:
    from rich.console import Console

    from .demo import ensure_demo_bench
    from .validation import print_checks, validate_demo, validate_real

    out = Console(width=max(console.width, 140))
    checks = validate_demo(ensure_demo_bench())
    print_checks("demo bench: reference edit vs perturbation (means over clips)", checks, out.print)
    if args.real and (args.real / "pairs").is_dir():
        real = validate_real(args.real)
        print_checks(f"real clips: {args.real}", real, out.print)
        checks += real
    elif args.real:
        console.print(f"real clips not found at {args.real}; skipped")
    failed = [c for c in checks if not c.passed]
    console.print(f"{len(checks) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    from .judge.setup import add_judge_args

    parser = argparse.ArgumentParser(
        prog="sparkle-bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    for name, func, help_text in (
        ("eval", cmd_eval, "infer (if needed) + score (+ judge with --judge) + table into runs/<name>/"),
        ("infer", cmd_infer, "only write the model's edited videos"),
        ("score", cmd_score, "only score existing edited videos (and write the table)"),
    ):
        p = sub.add_parser(name, help=help_text)
        _bench_args(p)
        _run_args(p)
        if name != "infer":
            _score_args(p)
            _display_args(p)
        else:
            p.add_argument("--strict", action="store_true", help="exit with status 3 if any sample failed")
            p.add_argument("--dry-run", action="store_true", help="print the GPU memory the model needs; load nothing")
        if name == "eval":
            add_judge_args(p, backend=None)
        p.set_defaults(func=func)

    p = sub.add_parser("judge", help="score edited videos with a VLM judge (cached, resumable) into judge.jsonl")
    _bench_args(p)
    _run_args(p)
    add_judge_args(p)
    p.add_argument("--strict", action="store_true", help="exit with status 3 if any sample failed or is missing")
    _display_args(p)
    p.set_defaults(func=cmd_judge)

    p = sub.add_parser("table", help="rebuild summary.csv of a run from its samples.jsonl and judge.jsonl")
    p.add_argument("run", type=Path)
    p.add_argument(
        "--missing-policy",
        choices=["exclude", "floor"],
        default="exclude",
        help="judge failures/missing: left out of the means (published behaviour) or scored 1",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 3 if any sample failed or is missing, or a metric was unavailable",
    )
    _label_arg(p)
    p.add_argument(
        "--compare",
        type=Path,
        nargs="+",
        metavar="OTHER_RUN",
        help="show the run's MACRO beside these runs (folders or summary CSVs), with ranks that say when they are tied",
    )
    _rank_by_arg(p)
    _display_args(p)
    p.set_defaults(func=cmd_table)

    p = sub.add_parser("agreement", help="Spearman correlation of judge dimensions with objective metrics, per theme")
    p.add_argument("run", type=Path)
    _display_args(p)
    p.set_defaults(func=cmd_agreement)

    p = sub.add_parser("leaderboard", help="merge run summaries (and published rows) into one table")
    p.add_argument("runs", type=Path, nargs="*", help="run folders or summary CSVs")
    p.add_argument("--published", type=_csv_list, help="add shipped rows: sparkle_bench, openve_bench")
    p.add_argument("--all-themes", action="store_true", help="keep per-theme rows, not only MACRO")
    p.add_argument(
        "--common",
        action="store_true",
        help="recompute every run's means over the samples all the runs scored "
        "(runs that cover different samples are warned about)",
    )
    p.add_argument("--csv", type=Path, help="write the merged table here (with <metric>_rank, <metric>_group columns)")
    _rank_by_arg(p)
    _display_args(p)
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser(
        "report", help="a static HTML report of runs: leaderboard, charts, per-sample gallery (opens from disk)"
    )
    p.add_argument("runs", type=Path, nargs="+", help="run folders (each with summary.csv)")
    p.add_argument("--out", type=Path, required=True, help="folder for index.html (and media/ with --copy-media)")
    p.add_argument(
        "--published", type=_csv_list, help="add shipped published rows to the leaderboard: sparkle_bench, openve_bench"
    )
    p.add_argument("--title", default="sparkle-bench report", help="the page's title")
    p.add_argument(
        "--copy-media",
        action="store_true",
        help="hard-link or copy every video under OUT/media so the folder can be moved (default: relative links)",
    )
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "baseline", help="write a run's per-sample scores to a file a repository commits (for `regress`)"
    )
    p.add_argument("run", type=Path, help="the run folder whose scores become the baseline")
    p.add_argument("--out", type=Path, required=True, help="baseline file to write (JSON, one sample a line)")
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser(
        "regress",
        help="CI gate: exit 1 when a run got worse than a baseline beyond tolerance (paired test per metric and theme)",
    )
    p.add_argument("run", type=Path, help="the run folder to check")
    p.add_argument("--baseline", type=Path, required=True, help="a run folder or a file from `sparkle-bench baseline`")
    p.add_argument(
        "--tolerance",
        type=_tolerance,
        action="append",
        default=[],
        metavar="METRIC=VALUE",
        help="smallest worsening of the mean that may fail the gate, repeatable (defaults measured from re-encoding "
        "noise: fg_psnr=0.02, bg_dynamics=0.03, bg_static=0.05, judge_*=0.1, ...)",
    )
    p.add_argument(
        "--seed-run",
        type=Path,
        help="another run of the baseline's model with another seed (run folder or baseline file): each tolerance "
        "widens to the per-sample spread between the two, so chance alone does not fail a stochastic model",
    )
    p.add_argument(
        "--alpha",
        type=float,
        default=0.05,
        help="significance level of each comparison against its tolerance (default 0.05)",
    )
    p.add_argument(
        "--format", choices=FORMATS, default="table", help="table: only what got worse; csv, md, json: every comparison"
    )
    p.set_defaults(func=cmd_regress)

    p = sub.add_parser("ls", help="list registered models, metrics or subsets (imports no torch)")
    p.add_argument("what", choices=["models", "metrics", "subsets"])
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser(
        "masks", help="foreground masks for a bench: grounding boxes at ~2 fps, SAM2 propagation, majority vote"
    )
    _bench_args(p)
    p.add_argument(
        "--out", type=Path, help="where to write {theme}/{id}.npz and MANIFEST.json (default: <bench>/masks)"
    )
    p.add_argument(
        "--detector", default="google/owlv2-base-patch16-ensemble", help="OWLv2 or Grounding DINO: hub id or folder"
    )
    p.add_argument(
        "--queries", type=_csv_list, default=["person", "animal", "vehicle"], help="what counts as foreground"
    )
    p.add_argument("--box-threshold", type=float, default=0.3)
    p.add_argument("--max-boxes", type=int, default=4, help="boxes kept per anchor frame, best first")
    p.add_argument(
        "--sam2", default="facebook/sam2.1-hiera-large", help="SAM2 hub id, or a .pt checkpoint with --sam2-config"
    )
    p.add_argument("--sam2-config", help="sam2 config name (configs/sam2.1/sam2.1_hiera_l.yaml) or a YAML file")
    p.add_argument("--anchor-fps", type=float, default=2.0, help="anchor frames per second of video")
    p.add_argument("--device", help="cuda or cpu (default: cuda when available)")
    p.add_argument("--strict", action="store_true", help="exit with status 3 if any video failed")
    p.set_defaults(func=cmd_masks)

    p = sub.add_parser("validate-metrics", help="check that known perturbations move every metric the right way")
    p.add_argument("--real", type=Path, help="folder of real clips (pairs/, openve3m_compare/, masks/)")
    p.set_defaults(func=cmd_validate_metrics)

    p = sub.add_parser(
        "shortcut-table", help="score shortcut edits (pan, zoom, shake, noise, still) built from real clips"
    )
    p.add_argument("--real", type=Path, required=True, help="folder of real clips (pairs/, openve3m_compare/, masks/)")
    p.add_argument("--work-height", type=int, default=288)
    p.add_argument("--frames", type=int, default=41, help="first N frames of every clip (default 41)")
    p.add_argument("--out", type=Path, help="also write the per-clip values as CSV here")
    p.set_defaults(func=cmd_shortcut_table)

    p = sub.add_parser("demo", help="write the demo bench to a folder")
    p.add_argument("--root", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser(
        "download", help="fetch a bench, or a model's weights (only the files it reads), from the Hugging Face hub"
    )
    p.add_argument(
        "--model", help="a model's weights into the Hugging Face cache: every repository it reads, sizes first"
    )
    p.add_argument(
        "--model-option",
        type=_model_option,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="options that choose the weights (base=..., mllm=...), as given to eval",
    )
    p.add_argument("--bench", choices=["sparkle", "openve"], help="a bench into --root (default: sparkle)")
    p.add_argument("--root", type=Path, help="where the bench goes")
    p.add_argument("--themes", type=_csv_list, help="only these themes of the bench")
    p.set_defaults(func=cmd_download)

    for module in COMMAND_GROUPS:
        importlib.import_module(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from .bench import BenchError
    from .masks import MaskError
    from .models import AdapterError
    from .registry import UnknownNameError
    from .runs import RunMismatchError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (BenchError, AdapterError, UnknownNameError, RunMismatchError, MaskError, ValueError, OSError) as exc:
        console.print(f"[red]error[/]: {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print("interrupted; re-run the same command to resume")
        return 130


if __name__ == "__main__":
    sys.exit(main())
