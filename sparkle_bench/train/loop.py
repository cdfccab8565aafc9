"""The training run on Hugging Face accelerate: one process on a CPU or GPU, ``accelerate launch``
on many GPUs or nodes, DeepSpeed/FSDP from accelerate's own config.

A run folder holds the resolved ``config.toml``, ``losses.jsonl`` (one line per optimizer step) and
``checkpoints/step-NNNNNN/`` written atomically every ``save_every`` steps: ``model.safetensors``
(DiffSynth layout, loadable with ``--model kiwi-sparkle:DIR``), ``kiwi.json`` (its base models) and
``state/`` (optimizer, scheduler, RNG, data positions, trainable weights) for an exact resume. The
same command resumes from the newest complete checkpoint and continues the same loss curve.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..log import console, problem
from ..records import append_jsonl, read_jsonl
from .config import TrainConfig, to_toml
from .data import PairDataset, PairStream, file_key, keep_as_is, read_pairs
from .model import FlowMatchingObjective, Start, export_state, make_trainable

CHECKPOINTS = "checkpoints"
TRAINABLE = "trainable.safetensors"


@dataclass
class Progress:
    """What a resume needs beyond weights and optimizer: the step and each rank's data position."""

    step: int = 0
    positions: list[int] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # pair id -> why it could not be used

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        self.step, self.positions, self.skipped = state["step"], list(state["positions"]), dict(state["skipped"])


def start_model(config: TrainConfig, dtype: torch.dtype):
    """The starting Kiwi model and how its Qwen LoRA relates to the base."""
    from ..models.kiwi.adapter import KiwiEdit, KiwiSparkle
    from ..models.kiwi.checkpoints import model_from_checkpoint, sort_checkpoint
    from ..models.kiwi.folders import load_folder
    from ..models.kiwi.sources import checkpoint_file, checkpoint_paths, resolve

    source = {"kiwi-edit": KiwiEdit.default_source, "kiwi-sparkle": KiwiSparkle.default_source}.get(config.start, config.start)
    path = resolve(source)
    checkpoint = checkpoint_file(path)
    if checkpoint is None:  # a Kiwi folder: what we export applies on top of it
        return load_folder(path, dtype), Start(qwen_lora=None), {"base": str(path)}
    base, mllm = checkpoint_paths(checkpoint, config.base, config.mllm)
    sorted_ = sort_checkpoint(load_file(checkpoint))
    model = model_from_checkpoint(sorted_, base, mllm, dtype, merge_qwen_lora=False)
    return model, Start(qwen_lora=sorted_.qwen_lora), {"base": str(base), "mllm": str(mllm) if mllm else None}


def latest_checkpoint(out: Path) -> Path | None:
    done = sorted(p for p in (out / CHECKPOINTS).glob("step-*") if (p / "kiwi.json").is_file() and not p.name.endswith(".tmp"))
    return done[-1] if done else None


def _trackers(config: TrainConfig) -> list[str]:
    import importlib.util

    trackers = list(config.log_with)
    if importlib.util.find_spec("wandb") and (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE")) and "wandb" not in trackers:
        trackers.append("wandb")
    return trackers


def train(config: TrainConfig) -> int:
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs, ProjectConfiguration, gather_object, set_seed

    out = Path(config.out)
    accelerator = Accelerator(
        gradient_accumulation_steps=config.grad_accum,
        mixed_precision=config.mixed_precision if torch.cuda.is_available() else "no",
        log_with=_trackers(config) or None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)],
    )
    set_seed(config.seed)
    main = accelerator.is_main_process
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.toml").write_text(to_toml(config))

    pairs = read_pairs(config.roots, config.themes)
    model, start, bases = start_model(config, torch.float32)
    trainable = make_trainable(model, config, start)
    model.place(accelerator.device)
    objective = FlowMatchingObjective(model, config.min_timestep, config.max_timestep)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    warmup = max(1, config.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup))
    if accelerator.state.deepspeed_plugin is not None:  # no prepared dataloader tells DeepSpeed the batch size
        accelerator.state.deepspeed_plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = config.batch_size
    objective, optimizer = accelerator.prepare(objective, optimizer)
    progress = Progress(positions=[0] * accelerator.num_processes)
    accelerator.register_for_checkpointing(scheduler, progress)

    def save_trainable(models, weights, output_dir):
        if main:
            state = {n: p.detach().cpu().contiguous() for n, p in model.named_parameters() if p.requires_grad}
            save_file(state, Path(output_dir) / TRAINABLE)
        weights.clear()  # the frozen parts come back from the start checkpoint; only trainable ones are saved

    def load_trainable(models, input_dir):
        state = load_file(Path(input_dir) / TRAINABLE)
        with torch.no_grad():
            for name, param in model.named_parameters():
                if name in state:
                    param.copy_(state[name])
        models.clear()

    accelerator.register_save_state_pre_hook(save_trainable)
    accelerator.register_load_state_pre_hook(load_trainable)

    resume = latest_checkpoint(out)
    if resume is not None:
        accelerator.load_state(str(resume / "state"))
        if main:
            console.print(f"resuming from {resume} (step {progress.step})")
            kept = [r for r in read_jsonl(out / "losses.jsonl") if r.get("step", 0) <= progress.step]
            tmp = out / ".losses.jsonl.tmp"
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
            tmp.replace(out / "losses.jsonl")  # steps after the checkpoint are trained again
    accelerator.init_trackers("kiwi-train", config={k: v if isinstance(v, (int, float, str, bool)) else str(v)
                                                    for k, v in asdict(config).items()})

    stream = PairStream(pairs, config.seed, accelerator.process_index, accelerator.num_processes,
                        progress.positions[accelerator.process_index])
    dataset = PairDataset(pairs, config.num_frames, config.pixel_budget, config.multiple, config.length_mismatch)
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, sampler=stream, collate_fn=keep_as_is,
                                         num_workers=config.workers,
                                         persistent_workers=config.workers > 0,
                                         prefetch_factor=2 if config.workers > 0 else None)
    batches = iter(loader)
    position = progress.positions[accelerator.process_index]
    cache = Path(config.cache_dir) if config.cache_dir else None
    encoder_frozen = not any(p.requires_grad for p in model.encoder.parameters())

    def next_sample() -> dict:
        nonlocal position
        for _ in range(2 * len(pairs) + 1):
            sample = next(batches)
            position += 1
            if "skip" not in sample:
                return sample
            if sample["id"] not in progress.skipped:
                problem("skipped", sample["id"], sample["skip"])
            progress.skipped[sample["id"]] = sample["skip"]
        raise ValueError(f"no usable training pair: all {len(progress.skipped)} tried were skipped")

    def cached_inputs(sample: dict) -> dict:
        """VAE latents (and, when the encoder is frozen, its context) from the cache, computed and
        stored on a miss; keyed by the files' content and the sizes they were decoded at."""
        if cache is None:
            return {}
        key = file_key(sample["source_path"], sample["source"].shape) + file_key(sample["target_path"], sample["target"].shape)[:20]
        if encoder_frozen:
            key += hashlib.sha1(sample["prompt"].encode()).hexdigest()[:12]
        path = cache / key[:2] / f"{key}.safetensors"
        if path.is_file():
            return {k: v.to(accelerator.device, model.dtype) for k, v in load_file(path).items()}
        with torch.no_grad():
            found = {"source": model.encode(sample["source"]), "target": model.encode(sample["target"])}
            if encoder_frozen:
                found["context"] = model.encoder(sample["prompt"], sample["source"])
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        save_file({k: v.cpu().contiguous() for k, v in found.items()}, tmp)
        os.replace(tmp, path)
        return found

    from rich.progress import BarColumn, Progress as Bar, TextColumn, TimeRemainingColumn

    bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
              TimeRemainingColumn(), console=console, disable=not main or not console.is_terminal)
    task = bar.add_task("training", total=config.steps, completed=progress.step)
    model.train()
    window: list[float] = []
    started = time.monotonic()
    with bar:
        while progress.step < config.steps:
            micro = 0
            for micro in range(config.grad_accum):
                with accelerator.accumulate(objective):
                    samples = [next_sample() for _ in range(config.batch_size)]
                    losses = []
                    for index, sample in enumerate(samples):
                        draw = torch.Generator().manual_seed(
                            config.seed * 1_000_003 + progress.step * 10_007 + (micro * config.batch_size + index) * 101
                            + accelerator.process_index)
                        losses.append(objective(sample, draw, **cached_inputs(sample)))
                    loss = torch.stack(losses).mean()
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.max_grad_norm > 0:
                        accelerator.clip_grad_norm_(params, config.max_grad_norm)
                    optimizer.step()
                    optimizer.zero_grad()
                    window.append(float(loss.detach()))
            scheduler.step()
            progress.step += 1
            mean_loss = float(accelerator.gather(torch.tensor([sum(window) / len(window)], device=accelerator.device)).mean())
            window.clear()
            seconds = time.monotonic() - started
            started = time.monotonic()
            samples_per_s = config.grad_accum * config.batch_size * accelerator.num_processes / max(seconds, 1e-9)
            record = {"step": progress.step, "loss": mean_loss, "lr": scheduler.get_last_lr()[0], "seconds": round(seconds, 3),
                      "samples_per_s": round(samples_per_s, 3), "skipped": len(progress.skipped)}
            if torch.cuda.is_available():
                record["gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            accelerator.log({k: v for k, v in record.items() if k != "step"}, step=progress.step)
            if main:
                append_jsonl(out / "losses.jsonl", record)
                memory = f" {record['gpu_mem_gb']} GB" if "gpu_mem_gb" in record else ""
                bar.update(task, completed=progress.step, description=f"step {progress.step} loss {mean_loss:.4f} "
                           f"lr {record['lr']:.2e} {seconds:.2f} s/step {samples_per_s:.2f} samples/s{memory}")
            evaluate_now = config.eval_bench and (progress.step == config.steps or (config.eval_every and progress.step % config.eval_every == 0))
            if progress.step % config.save_every == 0 or progress.step == config.steps or evaluate_now:
                progress.positions = [int(p) for p in gather_object([position])]
                checkpoint = save_checkpoint(accelerator, model, config, start, bases, progress, trainable)
                if evaluate_now:
                    if main:
                        from .evaluate import evaluate_checkpoint

                        evaluate_checkpoint(model, checkpoint, config, accelerator)
                    accelerator.wait_for_everyone()
    accelerator.end_training()
    if main:
        console.print(f"training done: {progress.step} steps, {len(progress.skipped)} pairs skipped; checkpoints in {out / CHECKPOINTS}")
    return 0


def save_checkpoint(accelerator, model, config: TrainConfig, start: Start, bases: dict, progress: Progress,
                    trainable: list[str]) -> Path:
    """``checkpoints/step-NNNNNN/`` written as ``.tmp`` and renamed when complete; keep the last ``keep``."""
    out = Path(config.out) / CHECKPOINTS
    final = out / f"step-{progress.step:06d}"
    tmp = out / f"{final.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp / "state"))
    if accelerator.is_main_process:
        save_file(export_state(model, config, start), tmp / "model.safetensors")
        (tmp / "kiwi.json").write_text(json.dumps({**bases, "start": config.start, "step": progress.step,
                                                   "trainable": len(trainable)}, indent=1) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(p for p in out.glob("step-*") if not p.name.endswith(".tmp"))[: -config.keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
