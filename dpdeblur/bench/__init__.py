"""Benchmarks: ``dpdeblur bench speed|quality|compare`` (library code in ``speed``,
``quality``, ``report``) and measurement scripts run as ``python -m dpdeblur.bench.<name>``
(``tiling``, ``memory``, ``jdrl_evidence``, ``cpu_models``); measurements, not tests."""
