"""Keeps Beam's GPU model manager out of medkg's processes; ``pipelines.records`` imports this first.

``apache_beam.ml.inference.base`` (RunInference) imports ``model_manager`` optionally (an ImportError leaves
it unused), and that module imports torch and scipy at the top: about 1.3 CPU-s in the driver and in every
worker process on this machine, for a feature (``RunInference(use_model_manager=True)``, GPU memory
juggling) medkg never turns on. Marking the module absent makes that optional import fail fast. A worker
meets ``pipelines.records`` first: the read stage (``ReadRecords``) runs before any RunInference stage.
"""

import sys

sys.modules.setdefault("apache_beam.ml.inference.model_manager", None)  # type: ignore[assignment]
