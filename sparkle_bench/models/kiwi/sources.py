"""Where Kiwi weights come from: a folder, a ``.safetensors`` file, or a Hugging Face id found in
the local cache (never downloaded at run time). Pickle checkpoints are refused: loading them can
run code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from pathlib import Path

import torch

from ...log import warn
from ..base import WeightsError
from .sidecar import SIDECAR, describe, fingerprint, read_sidecar

PICKLE_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl", ".pickle")


def refuse_pickle(source: str) -> None:
    if source.lower().endswith(PICKLE_SUFFIXES):
        raise WeightsError(
            f"{source}: pickle checkpoints are refused (loading one can run code); convert it to .safetensors"
        )


def resolve(source: str, revision: str | None = None) -> Path:
    """A local path for ``source``: itself, or its snapshot (at ``revision``, default the newest) in
    the Hugging Face cache."""
    refuse_pickle(source)
    path = Path(source).expanduser()
    if path.exists():
        return path.resolve()
    if source.startswith(("/", ".", "~")) or source.count("/") != 1:
        raise WeightsError(f"cannot load weights from {source}: no such file or folder")
    from huggingface_hub import errors, snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision, local_files_only=True))
    except getattr(errors, "IncompleteSnapshotError", ()) as exc:
        # fetched with file patterns (`sparkle-bench download` takes only what Kiwi reads): the
        # loader opens the files it needs from it and names any that is missing
        return Path(exc.snapshot_path)
    except Exception as exc:  # the hub client raises several types for "not cached"
        raise WeightsError(
            f"{source} is not in the local Hugging Face cache ({type(exc).__name__}); "
            f"`sparkle-bench download --model MODEL` fetches it, or pass a local path"
        ) from exc


def safetensors_keys(path: Path) -> list[str]:
    """The tensor names of a safetensors file, read from its header only; a file that is not
    safetensors (a renamed pickle, a truncated download) is refused in one line."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            return list(handle.keys())
    except (SafetensorError, OSError) as exc:
        raise WeightsError(
            f"{path.name} is not a readable safetensors file ({str(exc).splitlines()[0][:120]}); "
            f"only safetensors checkpoints are read"
        ) from exc


def checkpoint_file(path: Path) -> Path | None:
    """The DiffSynth checkpoint at ``path`` (a .safetensors file, or a folder holding
    ``model.safetensors`` or exactly one other), or None when ``path`` is a released-layout Kiwi folder."""
    from .checkpoints import is_kiwi_folder, is_wan_base

    if path.is_file():
        if path.suffix != ".safetensors":
            raise WeightsError(f"{path.name}: only .safetensors checkpoints are read")
        safetensors_keys(path)
        return path
    if is_kiwi_folder(path):
        return None
    if is_wan_base(path):
        raise WeightsError(
            f"{path} is a Wan base (transformer/, vae/), not Kiwi weights: "
            f"give it as --model-option base={path} of a Kiwi checkpoint"
        )
    files = (
        [path / "model.safetensors"] if (path / "model.safetensors").is_file() else sorted(path.glob("*.safetensors"))
    )
    if len(files) != 1:
        raise WeightsError(
            f"{path}: neither a Kiwi folder (model_index.json, mllm_encoder/) nor a folder with one "
            f".safetensors checkpoint ({len(files)} found)"
        )
    safetensors_keys(files[0])
    return files[0]


def _is_hub_id(source: str) -> bool:
    return not source.startswith(("/", ".", "~")) and source.count("/") == 1


def _candidates(record: dict | str, checkpoint: Path) -> Iterator[tuple[Path, bool]]:
    """Where a ``kiwi.json`` record may be on this machine, in the order tried, each with whether
    finding it there deserves a line: its absolute path, its path from the checkpoint's folder, its
    hub id at the recorded revision, then at any cached one. An older record's relative path was taken
    from the folder training ran in: tried from the working directory, then from each folder above the
    checkpoint (training ran in one of them when ``out`` was relative), then as the hub id it may be."""
    if isinstance(record, str):
        path = Path(record).expanduser()
        if path.is_absolute():
            yield path, False
            return
        yield Path.cwd() / path, False
        yield from ((folder / path, True) for folder in checkpoint.resolve().parents)
        if _is_hub_id(record):
            with suppress(WeightsError):
                yield resolve(record), False
        return
    if record.get("path"):
        yield Path(record["path"]), False
    if record.get("relative"):
        yield checkpoint.parent / record["relative"], False
    if record.get("hub"):
        for revision in dict.fromkeys((record.get("revision"), None)):
            with suppress(WeightsError):
                yield resolve(record["hub"], revision), False


def _is_same(path: Path, other: Path) -> bool:
    try:
        return path.samefile(other)
    except OSError:
        return False


def locate(checkpoint: Path, role: str, given: str | None, default: str) -> tuple[Path, bool]:
    """The local path of a DiffSynth checkpoint's ``role`` (``"base"``: the Wan base or the Kiwi
    folder it applies to; ``"mllm"``: its Qwen2.5-VL), and whether that is the one its ``kiwi.json``
    records. Resolution order:

    1. ``given`` (``--model-option base=``/``mllm=``): used as it is; refused in one line when
       ``kiwi.json`` records a different fingerprint, naming both;
    2. ``kiwi.json``: the recorded absolute path, the path relative to the checkpoint's folder, the
       hub id at its recorded revision, then at any cached revision; the first whose fingerprint is
       the recorded one (one found with another fingerprint is refused naming both); none found:
       one line naming what was recorded and the option that overrides it;
    3. no record: ``default`` (the released model, from the Hugging Face cache)."""
    sidecar = checkpoint.parent / SIDECAR
    record = read_sidecar(checkpoint).get(role)
    wanted = record.get("fingerprint") if isinstance(record, dict) else None
    if given:
        path = resolve(given)
        if wanted and (found := fingerprint(path)) != wanted:
            raise WeightsError(
                f"{role}={given} is not the {role} {sidecar} records: it has fingerprint {found[:12]}, "
                f"the recorded one is {describe(record)}; give that one (or delete the fingerprint "
                f"from kiwi.json to apply the checkpoint to another {role})"
            )
        same = record is not None and any(_is_same(path, c) for c, _ in _candidates(record, checkpoint))
        return path, bool(wanted) or same
    if record is None:
        return resolve(default), False
    other = None
    for candidate, notable in _candidates(record, checkpoint):
        if not candidate.exists():
            continue
        if wanted and (found := fingerprint(candidate)) != wanted:
            other = other or f"{candidate} holds other weights (fingerprint {found[:12]})"
            continue
        if notable:
            warn(
                f"{sidecar} records {role} {record!r} relative to the folder training ran in (an older kiwi.json); "
                f"using {candidate.resolve()}"
            )
        return candidate.resolve(), True
    if other:
        raise WeightsError(
            f"{role} recorded in {sidecar} is {describe(record)}, but {other}: "
            f"give the recorded one with --model-option {role}=PATH"
        )
    if isinstance(record, str) and not Path(record).expanduser().is_absolute():
        hub = " nor in the local Hugging Face cache" if _is_hub_id(record) else ""
        raise WeightsError(
            f"{role} {record!r} recorded in {sidecar} (an older kiwi.json: a path relative to the "
            f"folder training ran in) is not found from {Path.cwd()} or above the checkpoint{hub}: "
            f"run there or give --model-option {role}=PATH"
        )
    fetch = " (or fetch it: sparkle-bench download)" if isinstance(record, dict) and "hub" in record else ""
    raise WeightsError(
        f"{role} recorded in {sidecar} not found: {describe(record)}; give --model-option {role}=PATH{fetch}"
    )


def checkpoint_paths(checkpoint: Path, base: str | None, mllm: str | None) -> tuple[Path, Path | None]:
    """Local paths of a checkpoint's bases (no Qwen needed when the base is a whole Kiwi folder), in
    the order :func:`locate` resolves them, else the released models.

    A Kiwi folder given as ``base=`` for a checkpoint that carries a Qwen LoRA is refused unless it is
    the folder the checkpoint started from (its ``kiwi.json`` says so): its Qwen already has a LoRA
    merged in, and a released checkpoint's LoRA is relative to the plain Qwen2.5-VL-3B."""
    from .checkpoints import QWEN_PREFIX, is_kiwi_folder, is_wan_base
    from .releases import DEFAULT_BASE, DEFAULT_MLLM

    base_path, recorded = locate(checkpoint, "base", base, DEFAULT_BASE)
    if is_kiwi_folder(base_path):
        own_lora = any(k.startswith(QWEN_PREFIX) and ".lora_" in k for k in safetensors_keys(checkpoint))
        if base and not recorded and own_lora:
            raise WeightsError(
                f"base={base} is a Kiwi folder whose Qwen already has a LoRA merged in, and not the one "
                f"{checkpoint.name} started from; {checkpoint.name} carries its own Qwen LoRA: "
                f"give the Wan2.2-TI2V-5B base instead"
            )
        return base_path, None
    if not is_wan_base(base_path):
        raise WeightsError(f"base {base or base_path} is neither a Wan base (transformer/, vae/) nor a Kiwi folder")
    return base_path, locate(checkpoint, "mllm", mllm, DEFAULT_MLLM)[0]


def open_kiwi(
    source: str,
    dtype: torch.dtype,
    base: str | None = None,
    mllm: str | None = None,
    lora_alpha: float = 1.0,
    rounding: str = "float32",
):
    """A :class:`KiwiModel` from any supported source; one-line :class:`WeightsError` on failure."""
    from safetensors import SafetensorError

    from .checkpoints import CheckpointError, load_checkpoint
    from .folders import FolderError, load_folder

    path = resolve(source)
    try:
        checkpoint = checkpoint_file(path)
        if checkpoint is None:
            return load_folder(path, dtype)
        base_path, mllm_path = checkpoint_paths(checkpoint, base, mllm)
        return load_checkpoint(checkpoint, base_path, mllm_path, dtype, lora_alpha, rounding=rounding)
    except (CheckpointError, FolderError, OSError, ValueError, SafetensorError) as exc:
        raise WeightsError(f"cannot load Kiwi weights from {source}: {str(exc).splitlines()[0]}") from exc
