"""The real Plitka Pro predictor, slowed down like a GPU run, for queue tests through real Cog.

The draft path is instant on CPU, so cancelling, 409-while-busy, progress reporting and a
sidecar crash mid-job could not be observed against it. This module keeps predict.Predictor
(same inputs, schema and outputs) and only makes each run take PLITKA_TEST_STEPS ×
PLITKA_TEST_STEP_SECONDS, printing the same tqdm progress lines a diffusion run prints.
"""

from __future__ import annotations

import os
import time

import predict
from plitka.progress import print_progress

_real_generate = predict.generate


def _slow_generate(request, out_dir, renderer=None, progress=None, phases=None):
    steps = int(os.environ.get("PLITKA_TEST_STEPS", "10"))
    delay = float(os.environ.get("PLITKA_TEST_STEP_SECONDS", "0.2"))
    for step in range(1, steps + 1):
        time.sleep(delay)
        print_progress(step, steps)
    return _real_generate(request, out_dir, renderer=renderer, progress=progress, phases=phases)


predict.generate = _slow_generate


class Predictor(predict.Predictor):
    """predict.Predictor with the slowed generate() above."""
