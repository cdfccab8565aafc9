"""``kiwi.json``, which our trainer writes beside each checkpoint: the bases the checkpoint applies to
(the Wan base and Qwen model, or the Kiwi folder training started from) and the start itself, each
recorded so that it resolves the same from any working directory and on any machine:

- a hub snapshot as ``{"hub": "Wan-AI/Wan2.2-TI2V-5B-Diffusers", "revision": "<commit>", ...}``;
- a local folder as ``{"path": "/abs/kiwi-tiny", "relative": "../../../kiwi-tiny", ...}``, the
  relative path taken from the checkpoint's own folder, so a run folder moved together with its
  bases (or copied with them to another machine) still finds them;
- and for both a ``fingerprint`` (:func:`fingerprint`), by which a base found elsewhere (moved,
  copied, downloaded again) is recognised and a different one is refused by name.

Files written before this format hold plain strings: a hub id, or a path relative to the folder
training ran in (``sources.locate`` still reads them). No torch here: ``sparkle-bench download``
reads the record before anything heavy is imported.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

SIDECAR = "kiwi.json"
FORMAT = 2
SAMPLES, CHUNK = 32, 4096  # per safetensors file: slices of the data hashed beside the header


NOT_WEIGHTS = (SIDECAR, "SOURCE.json")  # records about a folder (the converter's cache writes SOURCE.json)


def _counted(path: Path):
    """Which files (by relative path) a folder's fingerprint covers: those Kiwi reads, so that a partial
    download equals a full clone. All of a Kiwi folder, a Wan base's ``transformer/`` and ``vae/``,
    a Qwen folder's top-level files."""
    if (path / "mllm_encoder").is_dir():
        return lambda name: True
    if (path / "transformer").is_dir() and (path / "vae").is_dir():
        return lambda name: name.startswith(("transformer/", "vae/"))
    return lambda name: "/" not in name


def _hash_safetensors(digest, path: Path) -> None:
    """The header (names, dtypes, shapes, offsets) and ``SAMPLES`` evenly spaced slices of the data:
    headers alone cannot tell two fine-tunes of one architecture apart, reading every weight is slow."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        raw = handle.read(8)
        length = struct.unpack("<Q", raw)[0] if len(raw) == 8 else 0
        if len(raw) < 8 or length > size - 8:  # not safetensors: the loader says so; here its bytes count
            handle.seek(0)
            digest.update(handle.read())
            return
        digest.update(handle.read(length))
        start, data = 8 + length, size - 8 - length
        offsets = [0] if data <= SAMPLES * CHUNK else [(data - CHUNK) * k // (SAMPLES - 1) for k in range(SAMPLES)]
        for offset in offsets:
            handle.seek(start + offset)
            digest.update(handle.read(CHUNK if len(offsets) > 1 else data))


def fingerprint(path: Path) -> str:
    """A sha256 that identifies weights without reading them all: for a file, its safetensors header
    and sampled data; for a folder, that of each ``.safetensors`` and the bytes of each ``.json``
    config, by relative path, among the parts Kiwi reads (a Wan base's ``transformer/`` and ``vae/``,
    a Qwen folder's top-level files, all of a Kiwi folder). Moving, copying or downloading a base
    again keeps it; another fine-tune of the same architecture changes it."""
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_file():
        _hash_safetensors(digest, path)
        return digest.hexdigest()
    counted = _counted(path)
    files = sorted(
        f.relative_to(path).as_posix()
        for f in path.rglob("*")
        if f.suffix in (".json", ".safetensors") and f.name not in NOT_WEIGHTS and f.is_file()
    )
    for name in filter(counted, files):
        digest.update(name.encode() + b"\0")
        if name.endswith(".safetensors"):
            _hash_safetensors(digest, path / name)
        else:
            digest.update((path / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def hub_snapshot(path: Path) -> tuple[str, str] | None:
    """``(repo id, commit)`` when ``path`` is a snapshot in a Hugging Face cache
    (``models--ORG--NAME/snapshots/COMMIT``), else None."""
    path = Path(path)
    entry = path.parent.parent.name
    if path.parent.name != "snapshots" or not entry.startswith("models--") or "--" not in entry[len("models--") :]:
        return None
    return entry[len("models--") :].replace("--", "/", 1), path.name


def entry(path: Path) -> dict:
    """How ``kiwi.json`` records a base or start that resolved to ``path`` on this machine (the
    checkpoint-relative path is added by :func:`sidecar_text`, which knows where the checkpoint lands)."""
    path = Path(path).resolve()
    found = hub_snapshot(path)
    where = {"hub": found[0], "revision": found[1]} if found else {"path": str(path)}
    return {**where, "fingerprint": fingerprint(path)}


def sidecar_text(records: dict[str, dict | None], folder: Path, **extra) -> str:
    """The ``kiwi.json`` of a checkpoint that will live in ``folder``: each local entry also by its
    path relative to that folder."""
    out: dict = {"format": FORMAT}
    for role, record in records.items():
        if record is not None and "path" in record:
            record = {**record, "relative": os.path.relpath(record["path"], Path(folder).resolve())}
        out[role] = record
    return json.dumps({**out, **extra}, indent=1) + "\n"


def read_sidecar(checkpoint: Path) -> dict:
    """The ``kiwi.json`` beside ``checkpoint`` (a file or its folder), or {} when there is none."""
    checkpoint = Path(checkpoint)
    sidecar = (checkpoint if checkpoint.is_dir() else checkpoint.parent) / SIDECAR
    if not sidecar.is_file():
        return {}
    try:
        recorded = json.loads(sidecar.read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{sidecar} is not readable JSON ({exc})") from exc
    if isinstance(recorded, dict):
        return recorded
    raise ValueError(f"{sidecar} is not a JSON object")


def describe(record: dict | str) -> str:
    """A record in one short phrase for messages: where it was, and its fingerprint's first digits."""
    if isinstance(record, str):
        return repr(record)
    if "hub" in record:
        where = record["hub"] + (f"@{record['revision'][:12]}" if record.get("revision") else "")
    else:
        relative = f" (or {record['relative']} from the checkpoint)" if record.get("relative") else ""
        where = record.get("path", "?") + relative
    return where + (f", fingerprint {record['fingerprint'][:12]}" if record.get("fingerprint") else "")


def recorded_source(record: dict | str | None) -> str | None:
    """What a record names, as a ``--model-option`` would: its hub id, else its absolute path."""
    if record is None or isinstance(record, str):
        return record
    return record.get("hub") or record.get("path")
