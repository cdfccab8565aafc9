"""Foreground masks for a bench, following the Sparkle recipe with open parts: a grounding
detector boxes the subjects on anchor frames (~2 fps), SAM2 propagates each anchor's boxes through
the whole video, and a pixel-wise majority vote over the passes gives the mask."""
