"""Sparkle's five-stage synthesis pipeline, stage by stage, on Ray Data.

1. fixed-camera source filtering (``stage1``: flow + RANSAC homography, then a VLM check);
2. instruction + first-frame edit (``stage2``: VLM, FLUX.2-klein, EditScore);
3. background plate (``stage3``: VLM grounding, foreground removal, EditScore, Wan image-to-video);
4. foreground masks (``stage4``: VLM anchors at 2 fps, SAM3/SAM2 propagation, majority vote);
5. decoupled guidance + final video (``stage5``: fused Canny edges, Wan VACE, EditScore on frames).

Each stage is a pure function of one record (+ files); ``pipeline`` plans and streams them,
``publish`` writes Sparkle's layout, ``status`` prints the funnel. Models, prompts, thresholds and
the scene taxonomy are data (``data/*.toml``, overridable from the config).
"""
