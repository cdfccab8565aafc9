"""Fine-tuning Kiwi on training pairs (Kiwi-Sparkle = Kiwi-Edit stage 2 on Sparkle) with accelerate,
exact resume, checkpoints our loader and upstream's tools read, and an evaluation hook."""
