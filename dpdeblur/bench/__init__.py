"""Benchmark and evidence scripts (``python -m dpdeblur.bench.<name>``)."""
