"""Benchmark scripts (``python -m dpdeblur.bench.<name>``); measurements, not tests."""
