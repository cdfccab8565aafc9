"""Video propagation: the boxes of one anchor frame tracked forward and backward through the whole
video, as one bool (T, H, W) pass. SAM2 through the ``sam2`` package, or SAM3's tracker through
transformers (``Sam3TrackerVideoModel``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..video import read_frames

DEFAULT_SAM2 = "facebook/sam2.1-hiera-large"
DEFAULT_SAM3 = "facebook/sam3"
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
                    for index, _, logits in self.predictor.propagate_in_video(
                        state, start_frame_idx=frame, reverse=reverse
                    ):
                        mask[index] = (logits > 0).any(dim=0).squeeze(0).cpu().numpy()
                out.append(mask)
        return out


class Sam3TrackerPropagator:
    """SAM3's video tracker from transformers (a hub id from the local cache, or a folder)."""

    def __init__(self, model: str = DEFAULT_SAM3, device: str | None = None):
        from transformers import Sam3TrackerVideoModel, Sam3TrackerVideoProcessor

        from ..placement import placement

        self.device, self.dtype = placement(device)
        self.processor = Sam3TrackerVideoProcessor.from_pretrained(model)
        self.model = Sam3TrackerVideoModel.from_pretrained(model, dtype=self.dtype).to(self.device).eval()

    def passes(self, video: Path, anchors: dict[int, np.ndarray]) -> list[np.ndarray]:
        """One (T, H, W) pass per anchor frame with boxes: its objects' union, propagated both ways."""
        import torch

        frames = list(read_frames(video))
        out = []
        with torch.inference_mode():
            session = self.processor.init_video_session(video=frames, inference_device=self.device, dtype=self.dtype)
            for frame, boxes in anchors.items():
                session.reset_tracking_data()  # a fresh pass over the same processed frames
                self.processor.add_inputs_to_inference_session(
                    session,
                    frame_idx=frame,
                    obj_ids=list(range(1, len(boxes) + 1)),
                    input_boxes=[[[float(v) for v in box] for box in boxes]],
                )
                mask = np.zeros((len(frames), session.video_height, session.video_width), dtype=bool)
                for reverse in (False, True):
                    for output in self.model.propagate_in_video_iterator(
                        session, start_frame_idx=frame, reverse=reverse
                    ):
                        found = self.processor.post_process_masks(
                            [output.pred_masks],
                            original_sizes=[[session.video_height, session.video_width]],
                            binarize=True,
                        )[0]
                        mask[output.frame_idx] = found.any(dim=0).squeeze(0).cpu().numpy()
                out.append(mask)
        return out
