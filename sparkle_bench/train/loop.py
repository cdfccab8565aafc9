"""The training run on Hugging Face accelerate: one process, or one job of N processes started by
``torchrun`` (CPU: gloo) or ``accelerate launch`` (GPUs), with the state kept by DDP, torch FSDP2
or DeepSpeed ZeRO-2 (``engine``).

A run folder holds the resolved ``config.toml``, ``losses.jsonl`` (one line per optimizer step,
written by the main process) and ``checkpoints/step-NNNNNN/`` written atomically every
``save_every`` steps: ``model.safetensors`` (what trains, bf16, DiffSynth layout, loadable with
``--model kiwi-sparkle:DIR`` and by upstream's converter), ``kiwi.json`` (its base models and start,
each as hub id and revision or as absolute and checkpoint-relative path, with a fingerprint, so it
finds them from any folder: ``models/kiwi/sidecar.py``) and ``state/`` (trainable fp32 weights and
optimizer state, sharded as the engine holds them, plus ``progress.json``: step, each process's data
position, skipped pairs) for an exact resume. The same command resumes from the newest complete
checkpoint and, with the same number of processes, continues the same loss curve; with another
number (not under DeepSpeed) the state is resharded and the data continues from each kind's earliest
unread pair. The learning rate is a function of the step, so no scheduler state exists to lose.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..log import console, problem, warn
from ..models.kiwi.sidecar import SIDECAR, sidecar_text
from ..records import append_jsonl, read_jsonl
from .cache import encode_entry, read_entry, write_entry
from .config import TrainConfig, to_toml
from .data import PairDataset, PairStream, keep_as_is, read_pairs, restart_points
from .memory import check_fit, device_capacity, estimate
from .model import batch_loss, export_trainable, lr_factor, prepare_training
from .start import start_model, weights_dtype

CHECKPOINTS = "checkpoints"
PROGRESS = "progress.json"


@dataclass
class Progress:
    """What a resume needs beyond weights and optimizer: the step and each process's data position."""

    step: int = 0
    positions: list[int] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # pair id -> why it could not be used
    processes: int = 1
    starts: list[int] = field(default_factory=list)  # per kind of pair: where this job's order begins


def latest_checkpoint(out: Path) -> Path | None:
    done = sorted(
        p for p in (out / CHECKPOINTS).glob("step-*") if (p / SIDECAR).is_file() and not p.name.endswith(".tmp")
    )
    return done[-1] if done else None


def _trackers(config: TrainConfig) -> list[str]:
    trackers = list(config.log_with)
    if (
        importlib.util.find_spec("wandb")
        and (os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"))
        and "wandb" not in trackers
    ):
        trackers.append("wandb")
    return trackers


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes")


def make_accelerator(config: TrainConfig):
    """The accelerate state for this process. On a machine without a GPU, a ``torchrun`` job is one
    gloo job (accelerate alone would start one independent trainer per process). Settings that an
    ``accelerate launch`` config or environment variable would change are taken from the training
    config; a differing value is named in one line, never applied silently."""
    from datetime import timedelta

    from accelerate import Accelerator
    from accelerate.utils import (
        DeepSpeedPlugin,
        DistributedDataParallelKwargs,
        DistributedType,
        GradientAccumulationPlugin,
        InitProcessGroupKwargs,
        ProjectConfiguration,
    )

    if _env_true("ACCELERATE_USE_FSDP"):
        raise ValueError(
            'launched with accelerate\'s FSDP config: set engine = "fsdp2" in the training config '
            "and launch with a plain (multi-GPU) accelerate config instead"
        )
    if _env_true("ACCELERATE_USE_DEEPSPEED") and config.engine != "deepspeed":
        raise ValueError(f'launched with a DeepSpeed config but engine = "{config.engine}": set engine = "deepspeed"')
    for variable, value in (
        ("ACCELERATE_GRADIENT_ACCUMULATION_STEPS", config.grad_accum),
        ("ACCELERATE_MIXED_PRECISION", config.mixed_precision),
    ):
        if os.environ.get(variable, str(value)).lower() != str(value).lower() and os.environ.get("RANK", "0") == "0":
            warn(f"{variable}={os.environ[variable]} is ignored: the training config says {value}")
    if config.engine == "deepspeed" and importlib.util.find_spec("deepspeed") is None:
        raise ValueError('engine = "deepspeed" needs DeepSpeed: pip install "sparkle-bench\\[train-deepspeed]"')
    plugin = None
    if config.engine == "deepspeed" and not _env_true("ACCELERATE_USE_DEEPSPEED"):
        plugin = DeepSpeedPlugin(
            zero_stage=2,
            gradient_accumulation_steps=config.grad_accum,
            gradient_clipping=config.max_grad_norm,
            zero3_init_flag=False,
            offload_optimizer_device="cpu" if config.offload_optimizer else "none",
            offload_param_device="none",
        )
    out = Path(config.out)
    accelerator = Accelerator(
        cpu=not torch.cuda.is_available(),
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=config.grad_accum),
        mixed_precision=config.mixed_precision,
        deepspeed_plugin=plugin,
        log_with=_trackers(config) or None,
        project_config=ProjectConfiguration(project_dir=str(out), logging_dir=str(out / "logs")),
        kwargs_handlers=[
            DistributedDataParallelKwargs(find_unused_parameters=True),
            InitProcessGroupKwargs(timeout=timedelta(seconds=5400)),
        ],  # upstream's: room for the eval hook
    )
    if config.engine == "deepspeed" and accelerator.distributed_type != DistributedType.DEEPSPEED:
        raise ValueError(
            f'engine = "deepspeed" needs GPUs (accelerate runs this job as {accelerator.distributed_type.value}); '
            f'use engine = "fsdp2" or "ddp" here'
        )
    if accelerator.state.deepspeed_plugin is not None:  # the recipe's values win over a launch config's
        ds = accelerator.state.deepspeed_plugin.deepspeed_config
        wanted = {
            "gradient_accumulation_steps": config.grad_accum,
            "gradient_clipping": config.max_grad_norm,
            "train_micro_batch_size_per_gpu": config.batch_size,
            "train_batch_size": config.batch_size * config.grad_accum * accelerator.num_processes,
        }
        for key, value in wanted.items():
            if ds.get(key) not in (None, "auto", value) and accelerator.is_main_process:
                warn(f"DeepSpeed config {key} = {ds[key]} is replaced by the training config's {value}")
            ds[key] = value
    return accelerator


def shard_fsdp2(objective: torch.nn.Module, config: TrainConfig, accelerator) -> torch.nn.Module:
    """torch FSDP2 over all processes: each block named in ``fsdp_wrap`` is a unit, the rest the root's."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    mesh = init_device_mesh(accelerator.device.type, (accelerator.num_processes,))
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if config.mixed_precision == "bf16"
        else MixedPrecisionPolicy()
    )
    for module in list(objective.modules()):
        if type(module).__name__ in config.fsdp_wrap:
            fully_shard(module, mesh=mesh, mp_policy=policy)
    fully_shard(objective, mesh=mesh, mp_policy=policy)
    return objective


def _raw(optimizer):
    return getattr(optimizer, "optimizer", optimizer)


def save_training_state(accelerator, objective, optimizer, config: TrainConfig, folder: Path) -> None:
    """Trainable weights and optimizer state only, as the engine holds them (every process writes its share)."""
    if config.engine == "deepspeed":
        objective.save_checkpoint(str(folder), tag="engine", exclude_frozen_parameters=True)
        return
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    weights, moments = get_state_dict(objective, _raw(optimizer), options=StateDictOptions(ignore_frozen_params=True))
    with warnings.catch_warnings():  # one process: "assuming the intent is to save in a single process"
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.save({"model": weights, "optimizer": moments}, checkpoint_id=str(folder / "trainable"))


def load_training_state(accelerator, objective, optimizer, config: TrainConfig, folder: Path) -> None:
    if config.engine == "deepspeed":
        objective.load_checkpoint(str(folder), tag="engine", load_module_strict=False)
        return
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict, set_state_dict

    options = StateDictOptions(ignore_frozen_params=True, strict=False)
    weights, moments = get_state_dict(objective, _raw(optimizer), options=options)
    saved = dcp.FileSystemReader(str(folder / "trainable")).read_metadata().state_dict_metadata
    # a parameter that had no gradient yet had no optimizer state: it must have none after the resume either
    moments["state"] = {fqn: s for fqn, s in moments["state"].items() if f"optimizer.state.{fqn}.step" in saved}
    state = {"model": weights, "optimizer": moments}
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load(state, checkpoint_id=str(folder / "trainable"))
    set_state_dict(
        objective,
        _raw(optimizer),
        model_state_dict=state["model"],
        optim_state_dict=state["optimizer"],
        options=options,
    )


def trainable_weights(objective, model, config: TrainConfig) -> dict[str, torch.Tensor]:
    """Every trainable parameter in full under KiwiModel names (FSDP2: gathered, on the main process only)."""
    if config.engine == "fsdp2":
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        full = get_model_state_dict(
            objective, options=StateDictOptions(full_state_dict=True, cpu_offload=True, ignore_frozen_params=True)
        )
        return {k.removeprefix("kiwi."): v for k, v in full.items()}
    return {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}


def train(config: TrainConfig) -> int:
    from accelerate.utils import gather_object, set_seed

    out = Path(config.out)
    accelerator = make_accelerator(config)
    set_seed(config.seed)
    main, world = accelerator.is_main_process, accelerator.num_processes
    pairs = read_pairs(config.roots, config.themes)
    kinds = len({p.kind for p in pairs})
    resume = latest_checkpoint(out)
    progress = Progress(positions=[0] * world, processes=world, starts=[0] * kinds)
    if resume is not None:
        progress = Progress(**json.loads((resume / "state" / PROGRESS).read_text()))
        if progress.processes != world:
            if config.engine == "deepspeed":
                raise ValueError(
                    f"{resume.name} was written by {progress.processes} process(es) and this job has {world}: "
                    f"DeepSpeed's partitions resume only with {progress.processes}"
                )
            if main:
                warn(
                    f"{resume.name} was written by {progress.processes} process(es), this job has {world}: "
                    f"the weights and "
                    f"optimizer state are resharded, the data continues from each kind's earliest unread pair"
                )
            progress.starts = restart_points(kinds, progress.starts, progress.positions)
            progress.positions, progress.processes = [0] * world, world
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.toml").write_text(to_toml(config))
        console.print(
            f"training: {world} process(es), engine {config.engine}; a step = {config.grad_accum} micro-steps x "
            f"{config.batch_size} sample(s) x {world} process(es) = "
            f"{config.grad_accum * config.batch_size * world} samples"
        )

    model, start, bases = start_model(config, weights_dtype(config))
    inference_cap = model.encoder.config.max_pixels_per_frame  # restored while the eval hook generates
    training = prepare_training(config, model, start)
    found = estimate(model, config, world)
    if main:
        console.print(found.line())
    check_fit(found, device_capacity(config))
    model.place(accelerator.device)
    if config.engine == "fsdp2":
        objective = shard_fsdp2(training.objective, config, accelerator)
        optimizer = torch.optim.AdamW(
            [p for p in objective.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
        )
    else:
        objective, optimizer = accelerator.prepare(training.objective, training.optimizer)
    params = [p for p in objective.parameters() if p.requires_grad]
    factor = lr_factor(config, world)

    if resume is not None:
        load_training_state(accelerator, objective, optimizer, config, resume / "state")
        if main:
            console.print(f"resuming from {resume} (step {progress.step})")
            kept = [r for r in read_jsonl(out / "losses.jsonl") if r.get("step", 0) <= progress.step]
            tmp = out / ".losses.jsonl.tmp"
            tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
            tmp.replace(out / "losses.jsonl")  # steps after the checkpoint are trained again
    accelerator.init_trackers(
        "kiwi-train",
        config={k: v if isinstance(v, (int, float, str, bool)) else str(v) for k, v in asdict(config).items()},
    )

    rank = accelerator.process_index
    cache = Path(config.cache_dir) if config.cache_dir else None
    stream = PairStream(pairs, config.seed, rank, world, progress.positions[rank], progress.starts)
    dataset = PairDataset(
        pairs,
        config.num_frames,
        config.pixel_budget,
        config.multiple,
        config.length_mismatch,
        config.resize,
        cache,
        config.cache_settings(),
        encoder_reads=not config.encoder_frozen,
    )
    loader = torch.utils.data.DataLoader(
        dataset,
        batch_size=None,
        sampler=stream,
        collate_fn=keep_as_is,
        num_workers=config.workers,
        persistent_workers=config.workers > 0,
        prefetch_factor=2 if config.workers > 0 else None,
    )
    batches = iter(loader)
    position = progress.positions[rank]

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

    def precomputed(sample: dict) -> dict:
        """Cached latents (and a frozen encoder's context): read on a hit, encoded and stored on a miss."""
        if "cached" in sample:
            return read_entry(sample["cached"], accelerator.device, model.dtype)
        if "cache_path" not in sample or config.engine == "fsdp2":  # sharded weights encode inside the forward only
            return {}
        found = encode_entry(model, sample, config.encoder_frozen)
        write_entry(Path(sample["cache_path"]), found)
        return found

    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    bar = Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(),
        console=console,
        disable=not main or not console.is_terminal,
    )
    task = bar.add_task("training", total=config.steps, completed=progress.step)
    model.train()
    window: list[float] = []
    started = time.monotonic()
    with bar:
        while progress.step < config.steps:
            lr = config.lr * factor(progress.step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            for micro in range(config.grad_accum):
                with accelerator.accumulate(objective), accelerator.autocast():
                    samples = [next_sample() for _ in range(config.batch_size)]
                    loss = batch_loss(
                        objective, samples, config, progress.step, micro, rank, [precomputed(s) for s in samples]
                    )
                    accelerator.backward(loss)
                window.append(float(loss.detach()))
            if config.max_grad_norm > 0:
                accelerator.clip_grad_norm_(params, config.max_grad_norm)  # DeepSpeed clips inside its step
            optimizer.step()
            optimizer.zero_grad()
            progress.step += 1
            losses = accelerator.gather(torch.tensor([sum(window) / len(window)], device=accelerator.device)).cpu()
            skipped = set().union(
                *gather_object([set(progress.skipped)])
            )  # a pair skipped by several processes counts once
            window.clear()
            seconds = time.monotonic() - started
            started = time.monotonic()
            samples_per_s = config.grad_accum * config.batch_size * world / max(seconds, 1e-9)
            record = {
                "step": progress.step,
                "loss": float(losses.mean()),
                "lr": lr,
                "seconds": round(seconds, 3),
                "samples_per_s": round(samples_per_s, 3),
                "skipped": len(skipped),
                "processes": world,
            }
            if torch.cuda.is_available():
                record["gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
            accelerator.log({k: v for k, v in record.items() if k != "step"}, step=progress.step)
            if main:
                append_jsonl(out / "losses.jsonl", record)
                memory = f" {record['gpu_mem_gb']} GB" if "gpu_mem_gb" in record else ""
                bar.update(
                    task,
                    completed=progress.step,
                    description=f"step {progress.step} loss {record['loss']:.4f} "
                    f"lr {lr:.2e} {seconds:.2f} s/step {samples_per_s:.2f} samples/s{memory}",
                )
            evaluate_now = config.eval_bench and (
                progress.step == config.steps or (config.eval_every and progress.step % config.eval_every == 0)
            )
            if progress.step % config.save_every == 0 or progress.step == config.steps or evaluate_now:
                progress.positions = [int(p) for p in gather_object([position])]
                for skipped in gather_object([progress.skipped]):
                    progress.skipped.update(skipped)
                checkpoint = save_checkpoint(accelerator, objective, optimizer, model, config, bases, progress)
                if evaluate_now:  # the whole subset in the main process; the others wait here
                    if main:
                        from .evaluate import evaluate_checkpoint

                        metrics = evaluate_checkpoint(model, checkpoint, config, inference_cap)
                        accelerator.log({f"eval/{k}": v for k, v in metrics.items()}, step=progress.step)
                    accelerator.wait_for_everyone()
    accelerator.end_training()
    if main:
        console.print(
            f"training done: {progress.step} steps, {len(progress.skipped)} pairs skipped; "
            f"checkpoints in {out / CHECKPOINTS}"
        )
    return 0


def save_checkpoint(
    accelerator, objective, optimizer, model, config: TrainConfig, bases: dict, progress: Progress
) -> Path:
    """``checkpoints/step-NNNNNN/`` written as ``.tmp`` and renamed when complete; keep the last ``keep``.
    ``bases``: the ``kiwi.json`` records of :func:`start.start_model` (local ones get their path from ``final``)."""
    out = Path(config.out) / CHECKPOINTS
    final = out / f"step-{progress.step:06d}"
    tmp = out / f"{final.name}.tmp"
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "state").mkdir(parents=True)
    accelerator.wait_for_everyone()
    save_training_state(accelerator, objective, optimizer, config, tmp / "state")
    weights = trainable_weights(objective, model, config)
    if accelerator.is_main_process:
        save_file(export_trainable(weights, model.has_reference), tmp / "model.safetensors")
        (tmp / "state" / PROGRESS).write_text(json.dumps(asdict(progress), indent=1) + "\n")
        (tmp / SIDECAR).write_text(sidecar_text(bases, final, step=progress.step, trainable=len(weights)))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(tmp, final)
        for old in sorted(p for p in out.glob("step-*") if not p.name.endswith(".tmp"))[: -config.keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final
