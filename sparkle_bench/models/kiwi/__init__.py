"""Kiwi-Edit and Kiwi-Sparkle with our own code on diffusers/transformers parts (no hub code is
ever run): condition encoder (Qwen2.5-VL + learnable queries), DiT step with source/reference
conditioning, flow-matching sampler, and loaders for the released folder and DiffSynth layouts."""
