"""Parity of our Wan2.2-Fun-Control sampler with VideoX-Fun's own pipeline, on the same tiny random weights.

VideoX-Fun is imported from a checkout (``--videox-fun``; only ``videox_fun/models/wan_transformer3d.py``,
its helpers and ``videox_fun/pipeline/pipeline_wan2_2_fun_control.py`` are needed; optional modules it
never calls on CPU are stubbed). Both sides get the same two experts (read from the same folder by
each side's own loader), the same diffusers UMT5 text encoder and Wan VAE (VideoX-Fun's VAE class
normalises latents inside; a small adapter does that around the diffusers VAE), the same control
video, start image, prompt, seed and schedule. Prints the mean absolute difference in grey levels.

    python benchmarks/fun_control_parity.py --videox-fun /path/to/VideoX-Fun [--steps 4] [--frames 9] [--reference]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import tempfile
import types
from pathlib import Path

import numpy as np


def _import_videox_fun(root: Path):
    """VideoX-Fun's transformer and control pipeline modules, stubbing modules absent here."""
    sys.path.insert(0, str(root))
    for package in ("videox_fun.models", "videox_fun.pipeline"):  # skip the package inits: they import every model
        module = types.ModuleType(package)
        module.__path__ = [str(root / package.replace(".", "/"))]
        sys.modules[package] = module

    def stub(name: str) -> None:
        module = types.ModuleType(name)
        module.__path__ = []

        def attribute(attr: str):
            if attr.startswith("__"):
                raise AttributeError(attr)
            return type(attr, (), {}) if attr[:1].isupper() else (lambda *a, **k: None)

        module.__getattr__ = attribute
        sys.modules[name] = module

    for _ in range(50):
        try:
            transformer = importlib.import_module("videox_fun.models.wan_transformer3d")
            models = sys.modules["videox_fun.models"]
            for name in ("AutoencoderKLWan", "AutoTokenizer", "WanT5EncoderModel"):
                setattr(models, name, object)
            models.Wan2_2Transformer3DModel = transformer.Wan2_2Transformer3DModel
            pipeline = importlib.import_module("videox_fun.pipeline.pipeline_wan2_2_fun_control")
            return transformer, pipeline
        except ModuleNotFoundError as exc:
            if exc.name.startswith("videox_fun"):
                raise
            stub(exc.name)
    raise RuntimeError("could not import VideoX-Fun")


def _vae_adapter(vae):
    """The diffusers Wan VAE behind VideoX-Fun's VAE interface (latents normalised inside)."""
    import torch
    from diffusers.models.autoencoders.vae import DecoderOutput, DiagonalGaussianDistribution

    mean = torch.tensor(vae.config.latents_mean).view(1, -1, 1, 1, 1)
    std = torch.tensor(vae.config.latents_std).view(1, -1, 1, 1, 1)

    class Adapter(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner, self.config = vae, types.SimpleNamespace(latent_channels=16, temporal_compression_ratio=4)
            self.spatial_compression_ratio, self.temporal_compression_ratio, self.latent_channels = 8, 4, 16

        @property
        def dtype(self):
            return torch.float32

        def encode(self, x):
            mu = (vae.encode(x).latent_dist.mode() - mean) / std
            return (DiagonalGaussianDistribution(torch.cat([mu, torch.zeros_like(mu)], 1)),)

        def decode(self, z):
            return DecoderOutput(sample=vae.decode(z * std + mean).sample.clamp(-1, 1))

    return Adapter()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videox-fun", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--guidance", type=float, default=6.0)
    parser.add_argument("--frames", type=int, default=9)
    parser.add_argument(
        "--reference", action="store_true", help="the start image also as Fun's reference image (ref_conv)"
    )
    args = parser.parse_args()
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    from sparkle_bench.synth.generators import Renderer
    from sparkle_bench.testing.tiny_fun_control import tiny_fun_control

    transformer_module, pipeline_module = _import_videox_fun(args.videox_fun.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        model, parts = tiny_fun_control(Path(tmp))
        spec = {
            "kind": "fun_control",
            "model": str(model),
            "parts": str(parts),
            "steps": args.steps,
            "guidance": args.guidance,
            "shift": 5.0,
            "boundary": 0.9,
            "negative_prompt": "blurry, static",
            "reference": args.reference,
        }
        ours = Renderer(spec, "cpu").backend
        rng = np.random.default_rng(0)
        height, width = 64, 96
        control = (rng.random((args.frames, height, width, 3)) > 0.85).astype(np.uint8) * 255
        first = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        prompt, seed = "Put the subject on a windy beach at dusk.", 1234
        mine = ours.render(control, first, prompt, seed)

        experts = {
            name: transformer_module.Wan2_2Transformer3DModel.from_pretrained(
                str(model / name), transformer_additional_kwargs={}, torch_dtype=torch.float32
            ).eval()
            for name in ("low_noise_model", "high_noise_model")
        }
        pipeline_module.Wan2_2FunControlPipeline._execution_device = property(
            lambda self: torch.device("cpu")
        )  # the adapter has no hooks
        torch.cuda.device = lambda device=None: (
            contextlib.nullcontext()
        )  # its denoising loop enters a CUDA device context
        pipe = pipeline_module.Wan2_2FunControlPipeline(
            tokenizer=ours.parts.tokenizer,
            text_encoder=ours.parts.text_encoder,
            vae=_vae_adapter(ours.parts.vae),
            transformer=experts["low_noise_model"],
            transformer_2=experts["high_noise_model"],
            scheduler=FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=5.0),
        )
        video = torch.from_numpy(np.repeat(first[None], args.frames, 0)).permute(3, 0, 1, 2)[None].float() / 255
        mask = torch.full((1, 1, args.frames, height, width), 255.0)
        mask[:, :, 0] = 0
        out = pipe(
            prompt,
            negative_prompt="blurry, static",
            height=height,
            width=width,
            video=video,
            mask_video=mask,
            control_video=torch.from_numpy(control).permute(3, 0, 1, 2)[None].float() / 255,
            num_frames=args.frames,
            num_inference_steps=args.steps,
            guidance_scale=args.guidance,
            boundary=0.9,
            shift=5,
            ref_image=video[:, :, :1] if args.reference else None,
            generator=torch.Generator("cpu").manual_seed(seed),
        ).videos
        theirs = (out[0].permute(1, 2, 3, 0).float().numpy() * 255).round().astype(np.uint8)
    diff = np.abs(mine.astype(np.int16) - theirs.astype(np.int16))
    print(
        f"frames {mine.shape}, {args.steps} steps, guidance {args.guidance}, reference {args.reference}: "
        f"mean |ours - VideoX-Fun| = {diff.mean():.4f} "
        f"grey levels (max {diff.max()}); output spread {mine.std():.1f}"
    )


if __name__ == "__main__":
    main()
