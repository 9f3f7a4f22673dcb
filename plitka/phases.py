"""One log line per phase of a prediction, with its timing; the same figures go into the report.

Lines are printed to stdout. Cog routes every line printed during a prediction into that
prediction's `logs` and, in the server's own log, tags it with the prediction id (coglet installs
per-prediction log writers, `_SlotLogWriter` in coglet/_sdk/__init__.pyi; a line in the server
log reads `{"message": "Plitka Pro: colormap 0.012 s", "prediction_id": "pred_…",
"source": "Stdout"}`). The Python API has no accessor for the id itself (`cog.current_scope()`
offers only `metrics` and `context`, cog/__init__.py), and none is needed: an operator filters the
server log by `prediction_id`. docs/operations.md shows a complete prediction's lines.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from plitka.memory import PeakWindow

PREFIX = "Plitka Pro:"


def print_line(line: str) -> None:
    print(line, flush=True)


class PhaseLog:
    """Times the phases of one prediction and logs each as it ends; tracks its peak memory.

    `done(phase)` closes the phase that began when the previous one ended (or at construction);
    `record(phase, seconds)` logs a phase timed elsewhere (the render's own load/denoise/decode).
    """

    def __init__(self, device: str = "cpu", emit: Callable[[str], None] = print_line):
        self.emit = emit
        self.timings: dict[str, float] = {}
        self.memory = PeakWindow(device)
        self._started = self._last = time.perf_counter()

    def done(self, phase: str, detail: str = "") -> float:
        now = time.perf_counter()
        elapsed, self._last = now - self._last, now
        self.timings[phase] = elapsed
        self._log(phase, elapsed, detail)
        return elapsed

    def record(self, phase: str, seconds: float, detail: str = "") -> None:
        self._log(phase, seconds, detail)

    def finish(self, warnings: list[str]) -> dict[str, Any]:
        """Log the warnings and the summary; returns `timings_s` and `memory` for the report."""
        self.timings["total"] = time.perf_counter() - self._started
        memory = self.memory.close()
        for warning in warnings:
            self.emit(f"{PREFIX} warning: {warning}")
        peak = (
            f"peak RSS {memory['rss_peak_mb']} MB (+{memory['rss_peak_growth_mb']} MB in this request)"
            if memory["rss_peak_mb"] is not None
            else f"RSS {memory['rss_end_mb']} MB ({memory['rss_delta_mb']:+} MB in this request)"
        )
        if "cuda_peak_allocated_mb" in memory:
            peak += f", CUDA peak {memory['cuda_peak_allocated_mb']} MB allocated"
        self.emit(
            f"{PREFIX} done in {self.timings['total']:.3f} s; {peak}; "
            f"{len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
        )
        return {"timings_s": {k: round(v, 4) for k, v in self.timings.items()}, "memory": memory}

    def _log(self, phase: str, seconds: float, detail: str) -> None:
        self.emit(f"{PREFIX} {phase} {seconds:.3f} s" + (f" ({detail})" if detail else ""))
