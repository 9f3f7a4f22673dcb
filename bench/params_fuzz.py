"""Time budget of request parsing under hostile input (issue 9): the property test only bounds the
number of examples; this measures how long each takes, side by side with a normal request.

Goal: every request, however hostile, parsed or refused in under 50 ms on the 2-core dev machine
(a normal one takes ~0.05 ms), and every error under 4,000 characters.
Usage: python bench/params_fuzz.py [--examples 2000]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
from hypothesis import HealthCheck, given, settings  # noqa: E402
from request_strategies import raw_requests  # noqa: E402  (the property test's strategies)

from plitka.params import parse_request  # noqa: E402
from plitka.problems import RequestError  # noqa: E402

BUDGET_MS = 50.0
NORMAL = {"colors": [{"name": "black", "proportion": 60}, {"name": "white", "proportion": 40}], "angle": 45}
BIG = "1" + "0" * 400
HOSTILE = {
    "normal request": json.dumps(NORMAL),
    "2 MB: 100,000 colour entries": json.dumps({"colors": [{"name": "black", "proportion": 1}] * 100_000}),
    "'[' x 100,000": "[" * 100_000,
    "'[' x 16,000 (under the size limit)": "[" * 16_000,
    "300 unknown colours": json.dumps(
        {"colors": [{"name": f"nope{i}", "proportion": 1} for i in range(300)]}
    ),
    "400-digit angle, seed, proportion": json.dumps(NORMAL)[:-1] + f', "angle": {BIG}, "seed": {BIG}}}',
    "1,000-digit seed": json.dumps(NORMAL)[:-1] + f', "seed": 1{"0" * 999}}}',
    "16 KB colour name": json.dumps({"colors": [{"name": "x" * 16_000, "proportion": 100}]}),
    "dict nested 100,000 deep": None,
}


def time_one(raw) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        parse_request(raw)
        size = 0
    except RequestError as error:
        size = len(str(error))
    return (time.perf_counter() - started) * 1000, size


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=2000)
    args = parser.parse_args()

    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    corpus = {**HOSTILE, "dict nested 100,000 deep": {"colors": deep}}
    normal_ms = statistics.median(time_one(json.dumps(NORMAL))[0] for _ in range(200))
    print(f"{'case':40s} {'ms':>9s} {'x normal':>9s} {'error chars':>12s}")
    for name, raw in corpus.items():
        elapsed, size = min((time_one(raw) for _ in range(3)), key=lambda r: r[0])
        print(f"{name:40s} {elapsed:9.3f} {elapsed / normal_ms:9.1f} {size:12d}")

    times: list[float] = []
    sizes: list[int] = []

    @settings(
        max_examples=args.examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(raw_requests)
    def sample(raw) -> None:
        elapsed, size = time_one(raw)
        times.append(elapsed)
        sizes.append(size)

    sample()
    times.sort()
    p99 = times[int(len(times) * 0.99) - 1]
    print(
        f"\nhypothesis corpus, {len(times)} examples: median {statistics.median(times):.3f} ms, "
        f"p99 {p99:.3f} ms, max {times[-1]:.3f} ms ({times[-1] / normal_ms:.0f}x a normal request); "
        f"largest error {max(sizes)} chars"
    )
    worst = max(times[-1], *(time_one(raw)[0] for raw in corpus.values()))
    verdict = "met" if worst < BUDGET_MS else "MISSED"
    print(f"budget {BUDGET_MS:g} ms per request: {verdict} (worst {worst:.2f} ms)")


if __name__ == "__main__":
    main()
