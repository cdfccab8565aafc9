"""The evaluation hook: the benchmark on a named subset with a checkpoint, as ``sparkle-bench eval
--model kiwi-sparkle:CHECKPOINT`` would run it (same run folder, tables and metrics), through the
same library call (:func:`sparkle_bench.api.run_eval`), but with the weights already in memory: the
adapter instance is given the training model instead of loading one. It runs in one process (the
main one) over the whole subset; the trainer makes the others wait."""

from __future__ import annotations

from pathlib import Path

from ..log import console
from .config import TrainConfig


def evaluate_checkpoint(model, checkpoint: Path, config: TrainConfig, inference_frame_cap: int) -> dict[str, float]:
    """Run the eval into ``{out}/eval/step-NNNNNN`` and return the MACRO row's metrics.
    ``inference_frame_cap`` is the Qwen per-frame cap generation uses (training may leave it unset)."""
    from ..api import EvalSettings, RunSettings, ScoreSettings, Selection, run_eval
    from ..models.kiwi.adapter import KiwiSparkle
    from .model import use_frame_cap

    adapter = KiwiSparkle(str(checkpoint))
    adapter.configure(dict(option.split("=", 1) for option in config.eval_options))
    adapter.model = model  # edit() loads only when no model is set
    # shard 0/1: this process evaluates everything (torchrun's RANK is not a shard here); no weights
    # check: they are the ones in memory; one scoring process: the trainer's own.
    run = RunSettings(
        adapter,
        Selection(config.eval_bench, subset=config.eval_subset),
        runs_dir=Path(config.out) / "eval",
        run_name=checkpoint.name,
        label=f"kiwi-sparkle {checkpoint.name}",
        shard="0/1",
        check_weights=False,
    )
    training_cap = use_frame_cap(model, inference_frame_cap)
    model.eval()
    try:
        result = run_eval(EvalSettings(run, ScoreSettings(workers=1)))
    finally:
        use_frame_cap(model, training_cap)
        model.train()
    if result.summary is None:
        cause = result.inference.first_failure if result.inference else f"exit status {result.exit_code}"
        console.print(f"[yellow]warning[/]: evaluation of {checkpoint.name} generated nothing; first cause: {cause}")
        return {}
    console.print(f"eval {checkpoint.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.macro.items()))
    return result.macro
