"""Progress lines in the tqdm form Replicate clients parse from logs: `NN%|bar| cur/total`."""

from __future__ import annotations

BAR_WIDTH = 20


def format_progress(step: int, total: int) -> str:
    percent = int(100 * step / total) if total else 100
    filled = BAR_WIDTH * step // total if total else BAR_WIDTH
    return f"{percent:3d}%|{'█' * filled}{' ' * (BAR_WIDTH - filled)}| {step}/{total}"


def print_progress(step: int, total: int) -> None:
    print(format_progress(step, total), flush=True)
