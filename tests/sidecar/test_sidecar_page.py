"""The operator page in real headless Chromium (Debian's /usr/bin/chromium driven by Playwright).

Screenshots land in test-artifacts/ (gitignored) so a reviewer can see what the operator sees.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from cog_server import free_port
from playwright.sync_api import Page, expect, sync_playwright
from sidecar_helpers import ARTIFACTS, PARAMS, wait_cog_idle, wait_job

pytestmark = [pytest.mark.browser, pytest.mark.server]

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ORANGE = "rgb(240, 123, 18)"


@pytest.fixture
def page(tmp_path) -> Iterator[Page]:
    assert shutil.which(CHROMIUM), "Chromium is missing: run `make system-deps` (Debian package chromium)"
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=str(tmp_path / "chromium-profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=FLAGS,
            viewport={"width": 1280, "height": 800},
        )
        try:
            yield context.pages[0] if context.pages else context.new_page()
        finally:
            context.close()


def row(page: Page, job_id: int):
    return page.locator(f'#jobs tbody tr[data-job-id="{job_id}"]')


def test_operator_page_queue_badge_submit_cancel_and_clear(page, steady_cog, sidecar_factory):
    wait_cog_idle(steady_cog.url)
    sidecar = sidecar_factory([steady_cog.url])
    page.goto(sidecar.url)
    badge = page.locator("#queue-badge")
    expect(badge).to_have_text("0")
    expect(badge).to_have_attribute("title", "0 jobs in the GPU queue: 0 pending, 0 processing")
    expect(page.locator("#gpu-state")).to_have_text("GPU ready")
    assert page.locator("#clear-queue").evaluate("b => getComputedStyle(b).backgroundColor") == ORANGE

    # Submit the prefilled recipe through the form.
    page.click("#submit-form button[type=submit]")
    expect(page.locator("#submit-result")).to_have_text("Queued as job #1, position 1.")
    expect(row(page, 1)).to_be_visible()

    # A wrong recipe is refused with the field and the fix.
    page.fill("#params", '{"colors": [{"name": "blak", "proportion": 100}]}')
    page.click("#submit-form button[type=submit]")
    result = page.locator("#submit-result")
    expect(result).to_contain_text("params_json.colors[0].name")
    expect(result).to_contain_text("Fix:")
    expect(result).to_have_class("message error")

    # Jobs submitted elsewhere appear through the 5-second refresh, badge tooltip included.
    with sidecar.client() as client:
        client.post("/jobs/batch", json={"jobs": [{"params_json": PARAMS}] * 4})
    expect(badge).to_have_text("5", timeout=6500)
    expect(badge).to_have_attribute("title", "5 jobs in the GPU queue: 4 pending, 1 processing")
    expect(row(page, 1).locator("td.progress")).to_contain_text("%", timeout=6500)
    expect(row(page, 1).locator("td.status")).to_have_text("processing")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sidecar-page.png"), full_page=True)

    # Per-job cancel of a pending job.
    row(page, 4).locator("button.cancel-job").click()
    expect(page.locator("#message")).to_have_text("Job #4 cancelled.")
    expect(row(page, 4).locator("td.status")).to_have_text("canceled")

    # Clear: the dialog can be dismissed without effect, then confirmed.
    page.click("#clear-queue")
    dialog = page.locator("#confirm-clear")
    expect(dialog).to_be_visible()
    expect(page.locator("#confirm-text")).to_contain_text("4 job(s) are in the queue")
    page.screenshot(path=str(ARTIFACTS / "sidecar-page-clear-dialog.png"))
    page.click("#confirm-cancel")
    expect(dialog).to_be_hidden()
    with sidecar.client() as client:
        assert client.get("/queue_status").json()["total_jobs"] == 4
    # "Keep the running job" clears only the pending ones; the next clear takes the running job too.
    page.click("#clear-queue")
    page.check("#pending-only")
    page.click("#confirm-ok")
    expect(page.locator("#message")).to_have_text(
        "Queue cleared successfully: 3 job(s) cleared (3 pending, 0 processing)."
    )
    expect(badge).to_have_text("1")
    expect(row(page, 1).locator("td.status")).to_have_text("processing")
    page.click("#clear-queue")
    expect(page.locator("#pending-only")).not_to_be_checked()
    page.click("#confirm-ok")
    expect(page.locator("#message")).to_have_text(
        "Queue cleared successfully: 1 job(s) cleared (0 pending, 1 processing)."
    )
    expect(badge).to_have_text("0")
    with sidecar.client() as client:
        assert client.get("/queue_status").json()["total_jobs"] == 0
        assert client.get("/jobs/1").json()["status"] == "canceled"


def test_page_shows_unreachable_gpu_and_unreachable_sidecar(page, sidecar_factory):
    dead = f"http://127.0.0.1:{free_port()}"
    sidecar = sidecar_factory([dead])
    with sidecar.client() as client:
        client.post("/jobs", json={"params_json": PARAMS})
    page.goto(sidecar.url)
    expect(page.locator("#gpu-state")).to_have_text("GPU server unreachable")
    banner = page.locator("#banner")
    expect(banner).to_contain_text("GPU server unreachable — jobs stay queued until it is back.")
    expect(banner).to_contain_text(f"{dead}: UNREACHABLE")
    # The queue is still real and shown: one job waits, not a silent 0.
    expect(page.locator("#queue-badge")).to_have_text("1")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "sidecar-page-gpu-unreachable.png"), full_page=True)

    sidecar.kill()
    expect(page.locator("#queue-badge")).to_have_text("?", timeout=6500)
    expect(page.locator("#queue-badge")).to_have_attribute(
        "title", "Queue count unknown: the sidecar did not answer."
    )
    expect(banner).to_contain_text("Sidecar unreachable — the queue state is unknown")


def test_page_asks_for_the_token_when_the_sidecar_has_one(page, draft_cog, sidecar_factory):
    token = "page-token-0123456789abcdef"
    sidecar = sidecar_factory([draft_cog.url], env={"PLITKA_SIDECAR_TOKEN": token})
    page.goto(sidecar.url)
    page.click("#submit-form button[type=submit]")
    expect(page.locator("#submit-result")).to_contain_text("Authorization")
    page.click("#auth summary")
    page.fill("#token", token)
    page.click("#submit-form button[type=submit]")
    expect(page.locator("#submit-result")).to_have_text("Queued as job #1, position 1.")
    # Reading the job table needs the token too; the page sends it with every call.
    expect(row(page, 1)).to_be_visible(timeout=6500)
    with sidecar.client() as client:
        assert wait_job(client, 1, ("succeeded", "failed"))["status"] == "succeeded"
