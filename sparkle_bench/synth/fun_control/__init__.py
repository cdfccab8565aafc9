"""Wan2.2-Fun-A14B-Control (VideoX-Fun), the control-video model Sparkle renders stage 5 with, on
diffusers' Wan parts: diffusers has no pipeline for it, so the checkpoint is read into
``WanTransformer3DModel`` (``checkpoint``), the DiT step adds Fun's inputs (``denoiser``) and our own
sampler conditions and runs the two experts (``sampler``)."""
