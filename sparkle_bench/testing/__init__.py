"""Tiny random-weight models built from configs and stand-in servers on loopback (a Hugging Face hub,
an OpenAI-compatible judge), so the real loading, download and calling code runs without downloads
or keys: what the tests and the ``benchmarks/`` scripts build their models and endpoints with.

Import the submodules (``sparkle_bench.testing.tiny_kiwi``, ``.hub_server``, ...): this package
imports nothing at import, so importing it costs nothing and needs no optional dependency.
"""
