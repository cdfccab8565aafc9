"""The evaluation hook: the benchmark on a named subset with a checkpoint, as ``sparkle-bench eval
--model kiwi-sparkle:CHECKPOINT`` would run it (same run folder, tables and metrics), but with the
weights already in memory: the adapter is given the training model instead of loading one. It runs
in one process (the main one) over the whole subset; the trainer makes the others wait."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..log import console
from .config import TrainConfig


def evaluate_checkpoint(model, checkpoint: Path, config: TrainConfig, inference_frame_cap: int) -> dict[str, float]:
    """Run the eval into ``{out}/eval/step-NNNNNN`` and return the MACRO row's metrics.
    ``inference_frame_cap`` is the Qwen per-frame cap generation uses (training may leave it unset)."""
    from ..bench import open_bench
    from ..metrics import DEFAULT_METRICS, load_metrics
    from ..models.kiwi.adapter import KiwiSparkle
    from ..runner import run_inference, run_scoring
    from ..runs import open_run
    from ..subsets import apply_subset
    from ..tables import summarize_run, write_table
    from .model import use_frame_cap

    bench = open_bench(config.eval_bench)
    if config.eval_subset:
        bench = apply_subset(bench, config.eval_subset)
    adapter = KiwiSparkle(str(checkpoint))
    adapter.configure(dict(option.split("=", 1) for option in config.eval_options))
    adapter.model = model  # edit() loads only when no model is set
    run_dir = Path(config.out) / "eval" / checkpoint.name
    open_run(run_dir, bench, adapter.spec, {"checkpoint": str(checkpoint), "subset": config.eval_subset,
                                            "model_option": list(config.eval_options)}, None, adapter.run_suffix)
    adapter.setup(bench)
    training_cap = use_frame_cap(model, inference_frame_cap)
    model.eval()
    try:
        report = run_inference(bench, adapter, run_dir / "outputs", run_dir / "inference.jsonl")
    finally:
        use_frame_cap(model, training_cap)
        model.train()
    run_scoring(bench, adapter, run_dir / "outputs", run_dir, load_metrics(list(DEFAULT_METRICS)))
    write_table(summarize_run(run_dir, bench, f"kiwi-sparkle {checkpoint.name}").table, run_dir / "summary.csv")
    if not report.generated and report.failed:
        console.print(f"[yellow]warning[/]: evaluation of {checkpoint.name} generated nothing; first cause: {report.first_failure}")
        return {}
    macro = pd.read_csv(run_dir / "summary.csv").set_index("theme").loc["MACRO"]
    metrics = {k: float(v) for k, v in macro.items() if isinstance(v, float) and not k.startswith("n_") and v == v}
    console.print(f"eval {checkpoint.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return metrics
