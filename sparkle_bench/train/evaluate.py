"""The evaluation hook: the benchmark on a named subset with a checkpoint, as ``sparkle-bench eval
--model kiwi-sparkle:CHECKPOINT`` would run it, but with the weights already in memory."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..log import console
from .config import TrainConfig


def evaluate_checkpoint(model, checkpoint: Path, config: TrainConfig, accelerator) -> dict[str, float]:
    """Run the eval into ``{out}/eval/step-NNNNNN`` and return the MACRO row's metrics."""
    from ..cli import main as cli_main
    from ..models.kiwi import sources

    runs = Path(config.out) / "eval"
    options = [arg for option in config.eval_options for arg in ("--model-option", option)]
    key = str((checkpoint / "model.safetensors").resolve())
    sources.PRELOADED[key] = model
    model.eval()
    try:
        code = cli_main(["eval", "--bench", config.eval_bench, "--subset", config.eval_subset, "--model",
                         f"kiwi-sparkle:{checkpoint}", "--runs-dir", str(runs), "--run-name", checkpoint.name, *options])
    finally:
        sources.PRELOADED.pop(key, None)
        model.train()
    summary = runs / checkpoint.name / "summary.csv"
    if code or not summary.is_file():
        console.print(f"[yellow]warning[/]: evaluation of {checkpoint.name} ended with status {code}")
        return {}
    macro = pd.read_csv(summary).set_index("theme").loc["MACRO"]
    metrics = {k: float(v) for k, v in macro.items() if isinstance(v, float) and not k.startswith("n_") and v == v}
    console.print(f"eval {checkpoint.name}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=int(checkpoint.name.split("-")[-1]))
    return metrics
