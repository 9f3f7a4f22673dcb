"""The SQLite queue on its own: order, positions, state changes, durability of the file, progress."""

from __future__ import annotations

import json
import sqlite3
import time

import pytest
import redis

from plitka.sidecar.jobs import MAX_NOTES, parse_progress, prediction_id
from plitka.sidecar.redis_store import RedisStore
from plitka.sidecar.sqlite_store import SQLiteStore
from plitka.sidecar.store import queue_status

SERVER = "http://127.0.0.1:5000"


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    """Both backends must behave the same; Redis is a real redis-server (flushed per test)."""
    if request.param == "sqlite":
        opened = SQLiteStore(tmp_path / "queue.sqlite")
    else:
        url = request.getfixturevalue("redis_url")
        redis.Redis.from_url(url).flushdb()
        opened = RedisStore(url)
    yield opened
    opened.close()


def submit(store, count: int) -> list[int]:
    return [
        job_id for job_id, _ in store.submit([("generate", {"params_json": f"{i}"}) for i in range(count)])
    ]


def test_positions_follow_submission_order_and_claims(store):
    created = store.submit([("generate", {"n": 1}), ("generate", {"n": 2})])
    assert [pos for _, pos in created] == [1, 2]
    assert [pos for _, pos in store.submit([("generate", {"n": 3})])] == [3]

    first = store.claim_next(SERVER)
    assert (first.id, first.status, first.server, first.attempts) == (1, "processing", SERVER, 1)
    assert store.position(store.get(1)) == 0
    assert [store.position(store.get(i)) for i in (2, 3)] == [1, 2]
    assert queue_status(store) == {
        "total_jobs": 3,
        "status_counts": {"pending": 2, "processing": 1},
        "jobs": [
            {"job_id": 1, "status": "processing", "type": "generate"},
            {"job_id": 2, "status": "pending", "type": "generate"},
            {"job_id": 3, "status": "pending", "type": "generate"},
        ],
    }


def test_native_json_body_equals_the_python_shape(store):
    assert json.loads(store.queue_status_json()) == queue_status(store)
    submit(store, 5)
    store.claim_next(SERVER)
    store.cancel(3, "x")
    body = json.loads(store.queue_status_json())
    assert body == queue_status(store)
    assert list(body) == ["total_jobs", "status_counts", "jobs"]
    assert [j["job_id"] for j in body["jobs"]] == [1, 2, 4, 5]


def test_release_puts_a_busy_job_back_at_its_old_place(store):
    submit(store, 3)
    claimed = store.claim_next(SERVER)
    store.release(claimed.id, "busy")
    job = store.get(claimed.id)
    assert (job.status, job.server, job.attempts, store.position(job)) == ("pending", None, 0, 1)
    assert store.claim_next(SERVER).id == claimed.id


def test_clear_cancels_everything_or_only_pending(store):
    submit(store, 4)
    running = store.claim_next(SERVER)
    kept = store.clear(pending_only=True)
    assert (kept.pending, kept.processing) == (3, [])
    assert store.get(running.id).status == "processing"
    assert {store.get(i).status for i in (2, 3, 4)} == {"canceled"}

    submit(store, 2)
    result = store.clear(pending_only=False)
    assert result.pending == 2 and [j.id for j in result.processing] == [running.id]
    assert store.get(running.id).status == "canceled"
    assert queue_status(store) == {
        "total_jobs": 0,
        "status_counts": {"pending": 0, "processing": 0},
        "jobs": [],
    }


def test_cog_updates_drive_progress_output_and_final_status(store):
    submit(store, 1)
    store.claim_next(SERVER)
    logs = "Plitka Pro: preview\n  5%|█         | 1/20\n 35%|████      | 7/20\n"
    assert store.record_update(1, {"status": "processing", "logs": logs}).progress == 35.0
    done = store.record_update(1, {"status": "succeeded", "logs": logs, "output": ["data:x"]})
    assert (done.status, done.progress, done.output) == ("succeeded", 100.0, ["data:x"])
    assert done.finished_at is not None
    # A late duplicate from Cog must not reopen or change a finished job.
    assert store.record_update(1, {"status": "processing", "logs": ""}) is None
    assert store.get(1).status == "succeeded"


def test_cog_failure_keeps_cogs_error_text(store):
    submit(store, 1)
    store.claim_next(SERVER)
    error = "Prediction failed: Prediction failed: ValueError: colors: proportions sum to 60"
    failed = store.record_update(1, {"status": "failed", "error": error, "logs": ""})
    assert (failed.status, failed.error) == ("failed", error)


def test_cancel_pending_and_unknown(store):
    submit(store, 2)
    before = store.cancel(2, "canceled by request")
    assert before.status == "pending"
    assert store.get(2).status == "canceled" and store.get(2).error == "canceled: canceled by request"
    assert store.cancel(99, "x") is None


def test_purge_forgets_only_old_finished_jobs(store):
    submit(store, 3)
    store.cancel(1, "x")
    time.sleep(0.01)
    cutoff = time.time()
    store.cancel(2, "x")
    assert store.purge_finished(cutoff) == 1
    assert store.get(1) is None and store.get(2) is not None and store.get(3).status == "pending"
    # Ids are never reused after a purge, so Cog prediction ids stay unique.
    assert submit(store, 1) == [4]


def test_reopened_file_keeps_jobs_namespace_and_secret(tmp_path):
    path = tmp_path / "queue.sqlite"
    first = SQLiteStore(path)
    submit(first, 3)
    first.claim_next(SERVER)
    namespace, secret = first.namespace, first.webhook_secret
    first.close()

    again = SQLiteStore(path)
    assert (again.namespace, again.webhook_secret) == (namespace, secret)
    assert [j.id for j in again.processing_jobs()] == [1]
    assert queue_status(again)["status_counts"] == {"pending": 2, "processing": 1}
    assert prediction_id(again.namespace, 1) == f"plitka-{namespace}-1"
    again.close()


def test_clear_of_ten_thousand_pending_cancels_every_one(store):
    # Its speed is measured in bench/sidecar_load.py, never asserted here.
    store.submit([("generate", {"params_json": "{}"})] * 10_000)
    assert store.clear(pending_only=False).pending == 10_000
    assert store.counts()["canceled"] == 10_000 and queue_status(store)["total_jobs"] == 0


def test_a_running_job_cancelled_stays_marked_until_cog_confirms(store):
    submit(store, 3)
    running = store.claim_next(SERVER)
    store.mark_launched(running.id)
    assert store.get(running.id).launched is True
    store.cancel(running.id, "canceled by request")
    store.cancel(2, "canceled by request")
    assert [j.id for j in store.pending_cancels()] == [running.id]  # the pending job needs no Cog cancel
    assert store.pending_cancels("http://elsewhere:5000") == []
    # Retention must not forget a job whose cancel Cog has not confirmed.
    assert store.purge_finished(time.time() + 1) == 1 and store.get(running.id) is not None
    store.cancel_confirmed(running.id, "Cog cancel: canceled")
    assert store.pending_cancels() == [] and store.get(running.id).notes[-1] == "Cog cancel: canceled"


def test_clear_marks_running_jobs_cancel_pending(store):
    submit(store, 2)
    running = store.claim_next(SERVER)
    store.clear(pending_only=False)
    assert [j.id for j in store.pending_cancels(SERVER)] == [running.id]


def test_summaries_carry_positions_and_no_payloads(store):
    submit(store, 4)
    store.claim_next(SERVER)
    store.cancel(2, "x")
    rows = store.summaries(10)
    assert [(r.id, r.status, r.position) for r in rows] == [
        (4, "pending", 2),
        (3, "pending", 1),
        (2, "canceled", None),
        (1, "processing", 0),
    ]
    assert [r.id for r in store.summaries(2)] == [4, 3]


def test_notes_of_a_job_released_again_and_again_stay_bounded(store):
    submit(store, 1)
    for attempt in range(50):
        store.claim_next(SERVER)
        store.release(1, f"server down ({attempt})")
    job = store.get(1)
    assert len(job.notes) == MAX_NOTES and job.notes[0] == "server down (0)"
    assert job.notes[-1] == "server down (49)" and job.status == "pending" and job.attempts == 0
    store.claim_next(SERVER)
    store.release(1, "server down (49)")
    assert store.get(1).notes.count("server down (49)") == 1


def test_sqlite_commits_are_fsynced_and_an_older_file_is_upgraded(tmp_path):
    path = tmp_path / "old.sqlite"
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, type TEXT NOT NULL, status TEXT NOT NULL, "
        "input TEXT NOT NULL, created_at REAL NOT NULL, started_at REAL, finished_at REAL, updated_at REAL, "
        "server TEXT, attempts INTEGER NOT NULL DEFAULT 0, progress REAL, logs TEXT NOT NULL DEFAULT '', "
        "output TEXT, error TEXT, notes TEXT NOT NULL DEFAULT '[]');"
        "INSERT INTO jobs (type, status, input, created_at) VALUES ('generate', 'pending', '{}', 1.0);"
    )
    old.commit()
    old.close()
    store = SQLiteStore(path)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    job = store.get(1)
    assert (job.status, job.launched, job.cancel_pending) == ("pending", False, False)
    store.close()


@pytest.mark.parametrize(
    ("logs", "expected"),
    [
        ("", None),
        ("no bar here", None),
        (" 40%|####      | 2/5 [00:01<00:02,  1.00it/s]\n", 40.0),
        (" 33%|███▎      | 1/3\n 66%|██████▋   | 2/3\n", 66.7),
        ("100%|██████████| 30/30\n", 100.0),
    ],
)
def test_progress_comes_from_the_last_tqdm_line(logs, expected):
    assert parse_progress(logs) == expected
