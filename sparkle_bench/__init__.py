"""sparkle-bench: evaluation harness for instruction-guided video background replacement."""

__version__ = "0.1.0"
