"""``sparkle-bench synth run`` and ``synth status`` (imports nothing heavy until run)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def stage_range(text: str) -> tuple[int, int]:
    """``3`` or ``2-4``, within 1-5."""
    first, _, last = text.partition("-")
    try:
        bounds = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a stage or a range like 1-5, got {text!r}") from None
    if not 1 <= bounds[0] <= bounds[1] <= 5:
        raise argparse.ArgumentTypeError(f"stages run from 1 to 5, got {text!r}")
    return bounds


def shard(text: str) -> tuple[int, int]:
    """``i/N``: this driver's shard (0 to N-1) of N."""
    index, _, count = text.partition("/")
    try:
        bounds = int(index), int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/N such as 0/4, got {text!r}") from None
    if not 0 <= bounds[0] < bounds[1]:
        raise argparse.ArgumentTypeError(f"a shard i/N needs 0 <= i < N, got {text!r}")
    return bounds


def cmd_run(args: argparse.Namespace) -> int:
    from .config import load_config
    from .pipeline import run_pipeline

    cfg = load_config(args.config)
    ids = {i.strip() for i in args.ids.split(",") if i.strip()} if args.ids else None
    address = args.address if args.address is not None else cfg.settings["ray"]["address"]
    if cfg.settings["demo"]:
        from .demo_models import demo_config

        with demo_config(cfg) as demo:
            report = run_pipeline(
                demo, *args.stages, ids=ids, use_ray=not args.no_ray, address=address, shard=args.shard
            )
    else:
        report = run_pipeline(cfg, *args.stages, ids=ids, use_ray=not args.no_ray, address=address, shard=args.shard)
    failed = sum(count for (_, status), count in report.outcomes.items() if status == "failed")
    return 3 if args.strict and failed else 0


def cmd_status(args: argparse.Namespace) -> int:
    from .config import load_config
    from .status import funnel, print_funnel

    cfg = load_config(args.config)
    if cfg.settings["demo"]:
        from .demo_models import demo_settings

        cfg = demo_settings(cfg)
    if args.json:
        rows, sources = funnel(cfg)
        print(json.dumps({"out": str(cfg.out), "sources": sources, "funnel": rows}, indent=1))
    else:
        print_funnel(cfg)
    return 0


def register(sub) -> None:
    p = sub.add_parser(
        "synth",
        help="regenerate Sparkle-style training pairs from your clips (five stages on Ray)",
        description="Sparkle's five-stage synthesis pipeline. Settings: CONFIG.toml (see examples/synth.toml).",
    )
    group = p.add_subparsers(dest="synth_command", required=True)

    r = group.add_parser("run", help="run (or resume) stages over the corpus; re-running skips what is decided")
    r.add_argument("config", type=Path, help="synthesis config (TOML)")
    r.add_argument("--stages", type=stage_range, default=(1, 5), help="a stage or a range, e.g. 1-5 (default), 2, 3-4")
    r.add_argument("--ids", help="comma-separated sample ids (default: every planned sample)")
    r.add_argument(
        "--address",
        help="Ray cluster to join: auto (a driver on the head) or the head's HOST:6379; default: the "
        "config's [ray] address, else RAY_ADDRESS (ray job submit), else Ray starts in this process",
    )
    r.add_argument(
        "--shard",
        type=shard,
        default=(0, 1),
        help="i/N: run shard i (0 to N-1) of the corpus, split by content, "
        "so N drivers share one corpus and output folder",
    )
    r.add_argument(
        "--no-ray", action="store_true", help="run the steps in this process, one sample at a time (debugging)"
    )
    r.add_argument("--strict", action="store_true", help="exit with status 3 if any sample failed")
    r.set_defaults(func=cmd_run)

    s = group.add_parser(
        "status", help="the funnel: per stage and theme, in / accepted / rejected by reason / failed, s/sample"
    )
    s.add_argument("config", type=Path, help="synthesis config (TOML)")
    s.add_argument("--json", action="store_true", help="print the funnel as JSON")
    s.set_defaults(func=cmd_status)
