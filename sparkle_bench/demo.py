"""The built-in demo bench: a tiny Sparkle-layout bench drawn from a seed, with exact masks.

Each clip is a textured figure walking over a textured room. The bench ships what a real
Sparkle-Bench copy has (CSV, metadata, source videos, ``ref_images`` = the clean *target*
background) plus ground-truth masks and a ``reference`` set of good edits: the same figure over
the target scene brought to life (drifting clouds, falling snow, rolling waves).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .masks import save_mask
from .paths import home
from .video import write_video

DEMO_VERSION = 1
HEIGHT, WIDTH, FPS = 256, 448, 16
SCENES: dict[str, list[tuple[str, str, str]]] = {  # theme -> (subtheme, scene, moving element)
    "location": [
        ("urban", "rooftop overlooking a city skyline", "clouds"),
        ("nature", "misty pine forest", "mist"),
        ("coast", "sandy beach with rolling waves", "waves"),
    ],
    "season": [
        ("winter", "snowy village street", "snow"),
        ("autumn", "park with falling leaves", "leaves"),
        ("spring", "blossoming cherry orchard", "petals"),
    ],
    "time": [
        ("night", "neon-lit city street", "rain"),
        ("dawn", "quiet lake at sunrise", "waves"),
        ("dusk", "desert road at sunset", "clouds"),
    ],
    "style": [
        ("cinematic", "rainy noir alley", "rain"),
        ("painterly", "impressionist flower garden", "petals"),
        ("retro", "1980s arcade hall", "clouds"),
    ],
}
PARTICLE_COLOURS = {
    "snow": (245, 245, 250),
    "leaves": (210, 110, 30),
    "petals": (250, 180, 200),
    "rain": (170, 180, 210),
}


@dataclass(frozen=True)
class Clip:
    """Everything needed to redraw one demo clip exactly."""

    theme: str
    index: int
    subtheme: str
    scene: str
    element: str
    seed: int
    num_frames: int

    @property
    def id(self) -> str:
        return f"Demo_{self.theme}_{self.index:03d}"

    @property
    def prompt(self) -> str:
        return (
            f"Replace the background with a {self.scene}, alive with moving {self.element}; "
            f"keep the person and their motion unchanged."
        )

    def rng(self, part: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, sorted(SCENES).index(self.theme), self.index, part])


def demo_clips(seed: int = 0) -> list[Clip]:
    clips = []
    for theme, scenes in SCENES.items():
        for index, (subtheme, scene, element) in enumerate(scenes):
            clip = Clip(theme, index, subtheme, scene, element, seed, 0)
            frames = int(clip.rng(0).integers(33, 50))
            clips.append(Clip(theme, index, subtheme, scene, element, seed, frames))
    return clips


def _smooth_noise(rng: np.random.Generator, height: int, width: int, scale: int) -> np.ndarray:
    small = rng.random((max(2, height // scale), max(2, width // scale))).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def source_background(clip: Clip) -> np.ndarray:
    """The source room: a wall gradient, furniture blocks and texture (static)."""
    rng = clip.rng(1)
    wall = np.linspace(rng.uniform(90, 150), rng.uniform(40, 90), HEIGHT, dtype=np.float32)[:, None, None]
    tint = rng.uniform(0.7, 1.2, 3).astype(np.float32)
    image = np.broadcast_to(wall * tint, (HEIGHT, WIDTH, 3)).copy()
    for _ in range(6):
        x, y = int(rng.integers(0, WIDTH - 60)), int(rng.integers(HEIGHT // 3, HEIGHT - 40))
        w, h = int(rng.integers(30, 110)), int(rng.integers(20, 90))
        image[y : y + h, x : x + w] = rng.uniform(30, 220, 3)
    image += (_smooth_noise(rng, HEIGHT, WIDTH, 6)[:, :, None] - 0.5) * 60
    return np.clip(image, 0, 255).astype(np.uint8)


def subject_mask(clip: Clip, t: int) -> np.ndarray:
    """The figure's exact silhouette at frame ``t`` (bool H x W): head, body, legs."""
    rng = clip.rng(2)
    x0, speed, bob = rng.uniform(110, 170), rng.uniform(1.5, 3.0), rng.uniform(2, 5)
    cx = int(round(x0 + speed * t))
    cy = int(round(HEIGHT * 0.55 + bob * np.sin(2 * np.pi * t / 16)))
    canvas = np.zeros((HEIGHT, WIDTH), np.uint8)
    cv2.ellipse(canvas, (cx, cy), (26, 48), 0, 0, 360, 1, -1)
    cv2.circle(canvas, (cx, cy - 66), 18, 1, -1)
    swing = int(round(12 * np.sin(2 * np.pi * t / 12)))
    cv2.line(canvas, (cx - 10, cy + 40), (cx - 10 + swing, cy + 95), 1, 12)
    cv2.line(canvas, (cx + 10, cy + 40), (cx + 10 - swing, cy + 95), 1, 12)
    return canvas.astype(bool)


def subject_texture(clip: Clip, t: int) -> np.ndarray:
    """The figure's clothing pattern, moving with it so that flow inside the mask is the walk."""
    rng = clip.rng(2)
    x0, speed = rng.uniform(110, 170), rng.uniform(1.5, 3.0)
    colour_a, colour_b = clip.rng(3).uniform(40, 255, 3), clip.rng(4).uniform(0, 200, 3)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    local_x = xx - (x0 + speed * t)
    stripes = (0.5 + 0.5 * np.sin(local_x / 3.0 + yy / 5.0))[:, :, None]
    return (stripes * colour_a + (1 - stripes) * colour_b).astype(np.uint8)


def target_background(clip: Clip, t: float) -> np.ndarray:
    """The new scene at time ``t`` (frames): a still painting plus its moving element."""
    rng = clip.rng(5)
    top, bottom, ground = (rng.uniform(0, 255, 3) for _ in range(3))
    horizon = int(HEIGHT * rng.uniform(0.5, 0.7))
    ramp = np.linspace(0, 1, horizon, dtype=np.float32)[:, None, None]
    image = np.empty((HEIGHT, WIDTH, 3), np.float32)
    image[:horizon] = top * (1 - ramp) + bottom * ramp
    image[horizon:] = ground
    image += (_smooth_noise(rng, HEIGHT, WIDTH, 10)[:, :, None] - 0.5) * 50
    move = np.random.default_rng([clip.seed, clip.index, 77])
    if clip.element in ("clouds", "mist"):
        wide = _smooth_noise(move, HEIGHT, WIDTH * 2, 24)
        shift = int(round(3.0 * t)) % (WIDTH * 2)
        layer = np.roll(wide, -shift, axis=1)[:, :WIDTH]
        alpha = np.clip((layer - 0.45) * 3, 0, 1)[:, :, None] * (0.9 if clip.element == "clouds" else 0.6)
        image = image * (1 - alpha) + 235 * alpha
    elif clip.element == "waves":
        yy, xx = np.mgrid[horizon:HEIGHT, 0:WIDTH].astype(np.float32)
        crest = 0.5 + 0.5 * np.sin(xx / 9.0 - t * 0.6 + np.sin(yy / 7.0) * 2 + yy / 4.0)
        image[horizon:] = image[horizon:] * (0.6 + 0.4 * crest[:, :, None]) + 60 * crest[:, :, None] ** 8
    else:  # falling particles: snow, leaves, petals, rain
        count = 160 if clip.element in ("snow", "rain") else 90
        x0, y0 = move.uniform(0, WIDTH, count), move.uniform(0, HEIGHT, count)
        vx, vy = move.uniform(-1.5, 1.5, count), move.uniform(3.0, 6.0, count) * (2 if clip.element == "rain" else 1)
        xs, ys = (x0 + vx * t) % WIDTH, (y0 + vy * t) % HEIGHT
        colour = tuple(float(c) for c in PARTICLE_COLOURS[clip.element])
        for x, y in zip(xs.astype(int), ys.astype(int)):
            if clip.element == "rain":
                cv2.line(image, (x, y), (x - 2, y + 9), colour, 1)
            else:
                cv2.circle(image, (x, y), 2 if clip.element == "snow" else 3, colour, -1)
    return np.clip(image, 0, 255).astype(np.uint8)


def composite(foreground: np.ndarray, background: np.ndarray, mask: np.ndarray) -> np.ndarray:
    return np.where(mask[..., None], foreground, background)


def render_source(clip: Clip) -> tuple[np.ndarray, np.ndarray]:
    """Source frames (T, H, W, 3) and the exact foreground mask (T, H, W)."""
    background = source_background(clip)
    masks = np.stack([subject_mask(clip, t) for t in range(clip.num_frames)])
    frames = np.stack([composite(subject_texture(clip, t), background, masks[t]) for t in range(clip.num_frames)])
    return frames, masks


def render_reference(clip: Clip, masks: np.ndarray) -> np.ndarray:
    """The good edit: the same figure over the living target scene."""
    return np.stack(
        [composite(subject_texture(clip, t), target_background(clip, t), masks[t]) for t in range(clip.num_frames)]
    )


def build_demo_bench(root: Path, seed: int = 0) -> Path:
    """Write the demo bench to ``root`` (replaced atomically if it exists)."""
    root = Path(root)
    tmp = root.with_name(f".{root.name}.{os.getpid()}.building")
    shutil.rmtree(tmp, ignore_errors=True)
    rows: dict[str, list[str]] = {theme: ["edited_type,prompt,original_video"] for theme in SCENES}
    meta: dict[str, list[str]] = {theme: [] for theme in SCENES}
    for clip in demo_clips(seed):
        frames, masks = render_source(clip)
        rel = f"source_videos/{clip.theme}/{clip.id}.mp4"
        write_video(tmp / rel, frames, FPS)
        save_mask(tmp / "masks" / clip.theme / f"{clip.id}.npz", masks)
        ref = tmp / "ref_images" / clip.theme / f"{clip.id}.png"
        ref.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(ref), cv2.cvtColor(target_background(clip, 0), cv2.COLOR_RGB2BGR))
        sample_out = f"{clip.theme}/{clip.subtheme}---{clip.scene.replace(' ', '_')}/{clip.id}_edited.mp4"
        write_video(tmp / "reference" / sample_out, render_reference(clip, masks), FPS)
        rows[clip.theme].append(f'{clip.theme},"{clip.prompt}",{rel}')
        meta[clip.theme].append(
            json.dumps(
                {
                    "id": clip.id,
                    "prompt": clip.prompt,
                    "metadata": {
                        "edit_type": clip.theme,
                        "chosen_keyword": f"{clip.subtheme}: {clip.scene}",
                        "original_scene": "A plain room with furniture blocks and a walking figure.",
                    },
                }
            )
        )
    for theme in SCENES:
        (tmp / f"{theme}_bench.csv").write_text("\n".join(rows[theme]) + "\n", encoding="utf-8")
        (tmp / f"{theme}_metadata.jsonl").write_text("\n".join(meta[theme]) + "\n", encoding="utf-8")
    (tmp / "DEMO.json").write_text(json.dumps({"demo_version": DEMO_VERSION, "seed": seed}) + "\n")
    if root.exists():
        shutil.rmtree(root)
    os.replace(tmp, root)
    return root


def demo_home() -> Path:
    return home() / f"demo-v{DEMO_VERSION}-seed0"


def ensure_demo_bench() -> Path:
    """The cached demo bench, built on first use."""
    root = demo_home()
    if not (root / "DEMO.json").is_file():
        build_demo_bench(root)
    return root
