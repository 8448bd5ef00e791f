"""lorag: answers from your own documents, with citations, on your own hardware.

Importing the package sets one process-wide default before torch can be imported:
``OMP_WAIT_POLICY=PASSIVE`` (unless the variable is already set). torch's OpenMP threads
otherwise spin while they wait, and when another process or another lorag task (an ingest job
beside the API's generation) wants the same cores, every parallel region waits for a thread that
is spinning elsewhere: a LoRA training step on 2 busy cores took 28-40 s spinning and 1.9-2.6 s
passive (measured here; benchmarks/train.py). The OpenMP runtime reads the variable once, when
torch loads it, so it is set here: every entry point (CLI, API, UI, finetune, benchmarks, tests)
imports ``assistant`` before anything imports torch.
"""

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
