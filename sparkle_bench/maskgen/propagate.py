"""SAM2 video propagation (the ``sam2`` package): the boxes of one anchor frame tracked forward and
backward through the whole video, as one bool (T, H, W) pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEFAULT_SAM2 = "facebook/sam2.1-hiera-large"
VIDEO_PREDICTOR_OVERRIDES = {  # what sam2's build_sam2_video_predictor sets, for configs given as files
    "_target_": "sam2.sam2_video_predictor.SAM2VideoPredictor",
    "sam_mask_decoder_extra_args.dynamic_multimask_via_stability": True,
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_delta": 0.05,
    "sam_mask_decoder_extra_args.dynamic_multimask_stability_thresh": 0.98,
    "binarize_mask_from_pts_for_mem_enc": True,
    "fill_hole_area": 8,
}


def load_sam2_video_predictor(checkpoint: str = DEFAULT_SAM2, config: str | None = None, device: str | None = None):
    """A hub id (``facebook/sam2.1-hiera-*``, from the local cache when offline), or a ``.pt``
    checkpoint with ``config``: a sam2 config name or a YAML file of your own."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor, build_sam2_video_predictor_hf

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if not Path(checkpoint).exists():
        return build_sam2_video_predictor_hf(checkpoint, device=device)
    if config is None:
        raise ValueError("a local SAM2 checkpoint needs --sam2-config (e.g. configs/sam2.1/sam2.1_hiera_l.yaml)")
    if not Path(config).is_file():
        return build_sam2_video_predictor(config, checkpoint, device=device)
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(config)
    for key, value in VIDEO_PREDICTOR_OVERRIDES.items():
        OmegaConf.update(cfg, f"model.{key}", value, force_add=True)
    model = instantiate(cfg.model, _recursive_=True)
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model.load_state_dict(state.get("model", state))
    return model.to(device).eval()


class Sam2Propagator:
    def __init__(self, predictor):
        self.predictor = predictor

    def passes(self, video: Path, anchors: dict[int, np.ndarray]) -> list[np.ndarray]:
        """One (T, H, W) pass per anchor frame with boxes: its objects' union, propagated both ways."""
        import torch

        with torch.inference_mode():
            state = self.predictor.init_state(video_path=str(video), offload_video_to_cpu=True)
            shape = (state["num_frames"], state["video_height"], state["video_width"])
            out = []
            for frame, boxes in anchors.items():
                self.predictor.reset_state(state)
                for obj_id, box in enumerate(boxes, 1):
                    self.predictor.add_new_points_or_box(state, frame_idx=frame, obj_id=obj_id, box=box)
                mask = np.zeros(shape, dtype=bool)
                for reverse in (False, True):
                    for index, _, logits in self.predictor.propagate_in_video(state, start_frame_idx=frame, reverse=reverse):
                        mask[index] = (logits > 0).any(dim=0).squeeze(0).cpu().numpy()
                out.append(mask)
        return out
