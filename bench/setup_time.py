"""`setup()` time after imports (goal <= 1 s): the runner must not load models at boot.

    .venv/bin/python bench/setup_time.py [--weights DIR] [--repeats 5]

Prints the import time of predict.py, the median `Predictor().setup()` time and the median
`PipelineManager(weights_dir)` construction time (marker + header verification of every file).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="default: PLITKA_WEIGHTS_DIR, else fresh demo weights")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    from plitka.demo_weights import weights_dir_for_run

    with weights_dir_for_run(args.weights) as weights_dir:
        os.environ["PLITKA_WEIGHTS_DIR"] = str(weights_dir)
        return measure(args.repeats)


def measure(repeats: int) -> int:
    started = time.perf_counter()
    from plitka.pipelines import PipelineManager
    from predict import Predictor

    imports = time.perf_counter() - started

    setups, managers = [], []
    for _ in range(repeats):
        predictor = Predictor()
        started = time.perf_counter()
        predictor.setup()
        setups.append(time.perf_counter() - started)
        started = time.perf_counter()
        PipelineManager.from_env()
        managers.append(time.perf_counter() - started)
    print(f"import predict + plitka.pipelines: {imports:.2f} s (once per process)")
    print(f"Predictor().setup():              median {statistics.median(setups):.3f} s over {repeats}")
    print(f"PipelineManager construction:     median {statistics.median(managers):.3f} s over {repeats}")
    print(f"goal setup() <= 1 s after imports: {'met' if statistics.median(setups) <= 1.0 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
