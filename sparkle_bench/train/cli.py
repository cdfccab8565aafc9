"""``sparkle-bench train`` and ``sparkle-bench train-data`` (imports nothing heavy until run)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_train(args: argparse.Namespace) -> int:
    from .config import FIELDS, load_config
    from .loop import train

    return train(load_config(args.config, {name: getattr(args, name) for name in FIELDS}))


def cmd_train_data(args: argparse.Namespace) -> int:
    from .pairs import build, from_layout, from_pair_folder

    left_out = 0
    if (args.source / "prompts" / f"{args.theme}_train.csv").is_file():
        candidates = from_layout(args.source, args.theme)
    else:
        candidates, left_out = from_pair_folder(args.source, args.prompts)
    if not candidates:
        raise ValueError(
            f"no pairs found in {args.source} (want prompts/{args.theme}_train.csv, or *_source/*_edited files)"
        )
    written, skipped = build(candidates, args.out, args.theme, args.copy)
    return 3 if args.strict and (skipped or left_out) else 0


def cmd_train_cache(args: argparse.Namespace) -> int:
    from .cache import build_cache
    from .config import FIELDS, load_config

    return build_cache(load_config(args.config, {name: getattr(args, name) for name in FIELDS}))


def register(sub) -> None:
    from .config import add_flags

    p = sub.add_parser(
        "train",
        help="fine-tune Kiwi on training pairs (one process, or under torchrun / accelerate launch)",
        description="Settings come from CONFIG.toml (see examples/train_kiwi_sparkle.toml); "
        "every setting is also a flag. Re-running the same command resumes.",
    )
    p.add_argument("config", type=Path, nargs="?", help="TOML settings (sections are optional)")
    add_flags(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser(
        "train-cache",
        help="encode every training pair once (VAE latents, a frozen encoder's contexts) into cache_dir",
        description="Run alone or under torchrun / accelerate launch (pairs split over processes); "
        "re-running skips what is cached. Training with the same cache_dir reads it.",
    )
    p.add_argument("config", type=Path, nargs="?", help="the training TOML (cache_dir must be set here or by flag)")
    add_flags(p)
    p.set_defaults(func=cmd_train_cache)

    p = sub.add_parser(
        "train-data", help="put training pairs into the Sparkle training layout (prompts/{theme}_train.csv)"
    )
    p.add_argument(
        "source",
        type=Path,
        help="synthesis output (prompts/{theme}_train.csv) or a folder of {id}_source/{id}_edited files",
    )
    p.add_argument("--out", type=Path, required=True, help="dataset root to write (merged if it exists)")
    p.add_argument("--theme", required=True, help="theme name (location, season, time, style, or your own)")
    p.add_argument(
        "--prompts", type=Path, help="CSV or JSONL with id and prompt columns (else {id}.txt beside the videos)"
    )
    p.add_argument("--copy", action="store_true", help="copy the videos instead of linking them")
    p.add_argument("--strict", action="store_true", help="exit with status 3 if any pair was skipped or left out")
    p.set_defaults(func=cmd_train_data)
