"""A synthesis config: the defaults (Sparkle's choices) under the user's TOML, the versioned data it
names (taxonomy, prompts, thresholds), and one settings digest per stage.

Each stage's ``settings(cfg)``, in its own module, names the values that can change its outcome
(models, the prompts and thresholds it uses, sizes, seed), never where or how fast it runs (Ray
resources, devices, endpoints); ``steps.stage_digests`` hashes them, cumulatively. A re-run skips
a sample decided at a stage only under the same digest, so a stricter last check re-runs the last
stage only, a new editor stages 2 to 5.
"""

from __future__ import annotations

import copy
import hashlib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = Path(__file__).parent / "data"
STAGES = (1, 2, 3, 4, 5)
DATA_KINDS = ("taxonomy", "prompts", "thresholds")
MODEL_PATH_KEYS = ("model", "lora", "config")
IDENTITY = {  # per role, the model settings that decide its outputs (not where or how fast it runs)
    "vlm": ("backend", "model", "boxes", "max_pixels", "max_new_tokens"),
    "editor": ("model", "steps", "guidance"),
    "scorer": ("backbone", "model", "lora", "score_range", "num_pass", "temperature"),
    "animator": ("model", "steps", "guidance"),
    "segmenter": ("kind", "model", "config"),
    "renderer": ("kind", "model", "parts", "steps", "guidance", "shift", "boundary", "reference", "negative_prompt"),
}
ROLES = tuple(IDENTITY)


class ConfigError(ValueError):
    """A config that cannot be used; the message says which key and why."""


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        out[key] = (
            _merge(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else copy.deepcopy(value)
        )
    return out


def read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def digest(value: object) -> str:
    return hashlib.sha1(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def load_data(kind: str, spec: str, overrides: dict | None = None, base_dir: Path = Path(".")) -> dict:
    """Built-in data by version (``thresholds-v1``) or file stem (``thresholds_v1``), or a TOML file.

    Overrides (a table of the user's config) are merged in and give the data its own version,
    ``<version>+<hash>``, so records made under other values are never taken for these.
    """
    builtins = {p.stem: p for p in sorted(DATA_DIR.glob(f"{kind}_*.toml"))}
    data = None
    for stem, path in builtins.items():
        found = read_toml(path)
        if spec in (stem, found.get("version")):
            data = found
    if data is None:
        path = Path(spec) if Path(spec).is_absolute() else base_dir / spec
        if not path.is_file():
            known = ", ".join(read_toml(p)["version"] for p in builtins.values())
            raise ConfigError(f"[data] {kind} = {spec!r}: neither a built-in ({known}) nor a file")
        data = read_toml(path)
    if "version" not in data:
        raise ConfigError(f"{kind} data {spec!r} has no 'version'")
    if overrides:
        unknown = [f"{kind}.{key}" for key in overrides if key not in data]
        unknown += [
            f"{kind}.{key}.{k}"
            for key, value in overrides.items()
            if isinstance(value, dict)
            for k in value
            if k not in data.get(key, {})
        ]
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)} (not in {kind} {data['version']})")
        data = _merge(data, overrides)
        data["version"] = f"{data['version']}+{digest(overrides)[:8]}"
    return data


@dataclass(frozen=True)
class SynthConfig:
    """Plain data (it travels to Ray workers): the merged settings and the data they name."""

    settings: dict
    taxonomy: dict
    prompts: dict
    thresholds: dict

    @property
    def out(self) -> Path:
        return Path(self.settings["out"])

    @property
    def themes(self) -> list[str]:
        return list(self.settings["themes"])

    def stage(self, number: int) -> dict:
        return self.settings[f"stage{number}"]

    def model(self, name: str) -> dict:
        try:
            return self.settings["models"][name]
        except KeyError:
            raise ConfigError(f"no [models.{name}] table") from None

    def role(self, stage: int, role: str) -> dict:
        """The model a stage uses for a role (vlm, editor, scorer, ...): ``[models.<role>]``, or the
        table the stage names with ``<role> = "<name>"``, whose keys override ``[models.<role>]``'s."""
        return {**self.model(role), **self.model(self.stage(stage).get(role, role))}

    def identity(self, stage: int, role: str) -> dict:
        spec = self.role(stage, role)
        return {key: spec.get(key) for key in IDENTITY[role]}

    def versions(self) -> dict[str, str]:
        return {kind: getattr(self, kind)["version"] for kind in DATA_KINDS}


def _resolve_paths(settings: dict, base: Path) -> None:
    """Paths in the config are relative to its file; a model that is not a folder there is a hub id."""
    settings["out"] = str((base / settings["out"]).resolve())
    if settings["corpus"]["path"]:
        settings["corpus"]["path"] = str((base / settings["corpus"]["path"]).resolve())
    for model in settings["models"].values():
        for key in MODEL_PATH_KEYS:
            value = model.get(key)
            if value and (base / value).exists():
                model[key] = str((base / value).resolve())


def _check(settings: dict, taxonomy: dict) -> None:
    unknown = [t for t in settings["themes"] if t not in taxonomy.get("themes", {})]
    if unknown:
        raise ConfigError(
            f"themes {unknown} are not in taxonomy {taxonomy['version']} ({', '.join(taxonomy['themes'])})"
        )
    video = settings["video"]
    if video["width"] % 16 or video["height"] % 16:
        raise ConfigError(
            f"[video] width and height must be multiples of 16 (the generators' unit), "
            f"got {video['width']}x{video['height']}"
        )
    if video["max_frames"] < 5:
        raise ConfigError("[video] max_frames must be at least 5")
    for number in STAGES:
        for role, name in settings[f"stage{number}"].items():
            if role in ROLES and name not in settings["models"]:
                raise ConfigError(f"[stage{number}] {role} = {name!r} but there is no [models.{name}] table")


def _unknown_keys(defaults: dict, user: dict) -> list[str]:
    """Keys of the user's file the defaults do not know (typos); model tables may have any name."""
    model_keys = {key for table in defaults["models"].values() for key in table}
    unknown = []
    for key, value in user.items():
        if key in ("thresholds", "prompts"):  # overrides of the data, checked against it
            continue
        if key not in defaults:
            unknown.append(key)
        elif key == "models":
            unknown += [f"models.{name}.{k}" for name, table in value.items() for k in table if k not in model_keys]
        elif isinstance(value, dict):
            allowed = set(defaults[key]) | (set(ROLES) if key.startswith("stage") else set())
            unknown += [f"{key}.{k}" for k in value if k not in allowed]
    return unknown


def load_config(path: Path) -> SynthConfig:
    """The defaults with the file at ``path`` over them."""
    user = read_toml(path)
    base = Path(path).resolve().parent
    defaults = read_toml(DATA_DIR / "defaults.toml")
    unknown = _unknown_keys(defaults, user)
    if unknown:
        raise ConfigError(
            f"{path}: unknown setting(s) {', '.join(unknown)} (see sparkle_bench/synth/data/defaults.toml)"
        )
    settings = _merge(defaults, {k: v for k, v in user.items() if k not in ("thresholds", "prompts")})
    _resolve_paths(settings, base)
    data = {
        kind: load_data(kind, settings["data"][kind], user.get(kind) if kind != "taxonomy" else None, base)
        for kind in DATA_KINDS
    }
    _check(settings, data["taxonomy"])
    return SynthConfig(settings=settings, **data)
