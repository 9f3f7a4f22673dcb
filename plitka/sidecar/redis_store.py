"""The queue in Redis, shared by the sidecar API and the Celery workers on several GPU boxes.

Layout (prefix `plitka:`): `job:<id>` hash per job, `pending` sorted set (score = id, so the
queue order is the submission order), `processing` set, `finished` sorted set (score = finish
time, for retention), `cancels` set (cancelled while running, Cog has not confirmed), `seq` id
counter, `meta` hash (namespace, webhook secret), `settings` (the API's reliability settings,
JSON, read by the workers). Every change that touches several keys is one Lua script, so API
and workers never see half a change.
"""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import redis

from plitka.sidecar.jobs import (
    ALL_STATUSES,
    CANCELED,
    COG_STATUS_MAP,
    FINISHED_STATUSES,
    PENDING,
    PROCESSING,
    SUCCEEDED,
    Job,
    JobSummary,
    log_tail,
    parse_progress,
    with_note,
)
from plitka.sidecar.sqlite_store import timing_summary
from plitka.sidecar.store import ClearResult, queue_status

P = "plitka:"

# KEYS: pending, processing, finished, cancels. ARGV: pending_only ("1"/"0"), now, prefix.
_CLEAR = """
local now = ARGV[2]
local cleared = {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  redis.call('HSET', ARGV[3] .. 'job:' .. id, 'status', 'canceled', 'finished_at', now, 'updated_at', now,
             'error', 'canceled: queue cleared')
  redis.call('ZADD', KEYS[3], now, id)
end
local pending = redis.call('ZCARD', KEYS[1])
redis.call('DEL', KEYS[1])
if ARGV[1] == '0' then
  for _, id in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    redis.call('HSET', ARGV[3] .. 'job:' .. id, 'status', 'canceled', 'finished_at', now, 'updated_at', now,
               'error', 'canceled: queue cleared', 'cancel_pending', '1')
    redis.call('ZADD', KEYS[3], now, id)
    redis.call('SADD', KEYS[4], id)
    table.insert(cleared, id)
  end
  redis.call('DEL', KEYS[2])
end
return {pending, cleared}
"""

# KEYS: pending, processing, job. ARGV: id, server, now. Returns 1 when claimed.
_CLAIM = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], 'status', 'processing', 'server', ARGV[2], 'started_at', ARGV[3],
           'updated_at', ARGV[3], 'logs', '', 'progress', '', 'launched', '')
redis.call('HINCRBY', KEYS[3], 'attempts', 1)
return 1
"""

# KEYS: pending, processing, job. ARGV: id, now, notes.
_RELEASE = """
if redis.call('SREM', KEYS[2], ARGV[1]) == 0 then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[1])
redis.call('HSET', KEYS[3], 'status', 'pending', 'server', '', 'started_at', '', 'updated_at', ARGV[2],
           'notes', ARGV[3], 'launched', '')
redis.call('HINCRBY', KEYS[3], 'attempts', -1)
return 1
"""

# KEYS: pending, processing, finished, job, cancels. ARGV: id, expected status, then field/value
# pairs. Applies the fields only if the job still has the expected status; moves it to
# `finished` when the new status is final and into `cancels` with cancel_pending. Returns 1
# when applied.
_TRANSITION = """
if redis.call('HGET', KEYS[4], 'status') ~= ARGV[2] then return 0 end
local fields = {}
local new_status = ARGV[2]
for i = 3, #ARGV, 2 do
  table.insert(fields, ARGV[i]); table.insert(fields, ARGV[i + 1])
  if ARGV[i] == 'status' then new_status = ARGV[i + 1] end
  if ARGV[i] == 'cancel_pending' and ARGV[i + 1] == '1' then redis.call('SADD', KEYS[5], ARGV[1]) end
end
redis.call('HSET', KEYS[4], unpack(fields))
if new_status ~= 'pending' and new_status ~= 'processing' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[1])
  redis.call('ZADD', KEYS[3], redis.call('HGET', KEYS[4], 'finished_at'), ARGV[1])
end
return 1
"""


class RedisStore:
    """QueueStore on Redis (durability = the Redis server's persistence settings, see docs)."""

    # Celery workers change the queue from other processes, so nothing here can be cached.
    version = None

    def __init__(self, url: str):
        self.url = url
        self._r = redis.Redis.from_url(url, decode_responses=True)
        self._clear = self._r.register_script(_CLEAR)
        self._claim = self._r.register_script(_CLAIM)
        self._release = self._r.register_script(_RELEASE)
        self._transition = self._r.register_script(_TRANSITION)
        self._r.hsetnx(P + "meta", "namespace", secrets.token_hex(4))
        self._r.hsetnx(P + "meta", "webhook_secret", secrets.token_hex(16))
        self.namespace, self.webhook_secret = self._r.hmget(P + "meta", ["namespace", "webhook_secret"])

    def ping(self) -> None:
        self._r.ping()

    def submit(self, items: list[tuple[str, dict[str, Any]]]) -> list[tuple[int, int]]:
        now = time.time()
        last = self._r.incrby(P + "seq", len(items))
        ids = list(range(last - len(items) + 1, last + 1))
        pipe = self._r.pipeline(transaction=True)
        for job_id, (kind, data) in zip(ids, items, strict=True):
            record = {"id": job_id, "type": kind, "status": PENDING, "input": json.dumps(data)}
            pipe.hset(_key(job_id), mapping={**record, "created_at": now, "updated_at": now, "attempts": 0})
            pipe.zadd(P + "pending", {str(job_id): job_id})
        pipe.execute()
        ranks = self._r.zrank(P + "pending", str(ids[0]))
        first = (ranks if ranks is not None else 0) + 1
        return [(job_id, first + index) for index, job_id in enumerate(ids)]

    def get(self, job_id: int) -> Job | None:
        data = self._r.hgetall(_key(job_id))
        return _job(data) if data else None

    def position(self, job: Job) -> int | None:
        if job.status == PROCESSING:
            return 0
        if job.status != PENDING:
            return None
        rank = self._r.zrank(P + "pending", str(job.id))
        return None if rank is None else rank + 1

    def active_jobs(self) -> list[Job]:
        processing = sorted(int(i) for i in self._r.smembers(P + "processing"))
        pending = [int(i) for i in self._r.zrange(P + "pending", 0, -1)]
        ids = processing + pending
        pipe = self._r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(_key(job_id), ["type", "status"])
        rows = pipe.execute()
        return [
            Job(id=job_id, type=row[0], status=row[1], input={}, created_at=0.0)
            for job_id, row in zip(ids, rows, strict=True)
            if row[1] in (PENDING, PROCESSING)
        ]

    def queue_status_json(self) -> bytes:
        return json.dumps(queue_status(self), separators=(",", ":")).encode()

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(ALL_STATUSES, 0)
        counts[PENDING] = self._r.zcard(P + "pending")
        counts[PROCESSING] = self._r.scard(P + "processing")
        pipe = self._r.pipeline(transaction=False)
        for job_id in self._r.zrange(P + "finished", 0, -1):
            pipe.hget(_key(job_id), "status")
        for status in pipe.execute():
            if status in counts:
                counts[status] += 1
        return counts

    def summaries(self, limit: int) -> list[JobSummary]:
        ids = {int(i) for i in self._r.smembers(P + "processing")}
        ids |= {int(i) for i in self._r.zrange(P + "pending", 0, -1)}
        ids |= {int(i) for i in self._r.zrange(P + "finished", 0, limit - 1, desc=True)}
        chosen = sorted(ids, reverse=True)[:limit]
        pipe = self._r.pipeline(transaction=False)
        for job_id in chosen:
            pipe.hmget(_key(job_id), SUMMARY_FIELDS)
            pipe.zrank(P + "pending", str(job_id))
        replies = pipe.execute()
        summaries = []
        for job_id, row, rank in zip(chosen, replies[::2], replies[1::2], strict=True):
            data = dict(zip(SUMMARY_FIELDS, row, strict=True))
            if data["status"] is None:
                continue
            position = 0 if data["status"] == PROCESSING else None if rank is None else rank + 1
            summaries.append(
                JobSummary(
                    id=job_id,
                    type=data["type"],
                    status=data["status"],
                    position=position,
                    progress=_float(data["progress"]),
                    server=data["server"] or None,
                    attempts=int(data["attempts"] or 0),
                    created_at=float(data["created_at"]),
                    started_at=_float(data["started_at"]),
                    finished_at=_float(data["finished_at"]),
                    error=data["error"] or None,
                    notes=json.loads(data["notes"] or "[]"),
                )
            )
        return summaries

    def clear(self, pending_only: bool) -> ClearResult:
        keys = [P + "pending", P + "processing", P + "finished", P + "cancels"]
        pending, cleared = self._clear(keys=keys, args=["1" if pending_only else "0", time.time(), P])
        return ClearResult(pending=int(pending), processing=[job for job in map(self.get, cleared) if job])

    def cancel(self, job_id: int, note: str) -> Job | None:
        job = self.get(job_id)
        if job is None or job.finished:
            return job
        now = time.time()
        fields = {"status": CANCELED, "finished_at": now, "updated_at": now, "error": f"canceled: {note}"}
        fields["notes"] = json.dumps(with_note(job.notes, note))
        if job.status == PROCESSING:
            fields["cancel_pending"] = "1"
        if not self._apply(job_id, job.status, fields):
            return self.cancel(job_id, note)
        return job

    def cancel_confirmed(self, job_id: int, note: str) -> None:
        job = self.get(job_id)
        # Only the first confirmation of a cancel is noted (another process may have sent it too).
        if job is not None and job.cancel_pending:
            pipe = self._r.pipeline(transaction=True)
            pipe.hset(
                _key(job_id), mapping={"cancel_pending": "", "notes": json.dumps(with_note(job.notes, note))}
            )
            pipe.srem(P + "cancels", str(job_id))
            pipe.execute()

    def pending_cancels(self, server: str | None = None) -> list[Job]:
        jobs = [self.get(int(i)) for i in sorted(self._r.smembers(P + "cancels"), key=int)]
        return [job for job in jobs if job and (server is None or job.server == server)]

    def mark_launched(self, job_id: int) -> None:
        self._apply(job_id, PROCESSING, {"launched": "1"})

    def mark_sent(self, job_ids: list[int]) -> None:
        """Celery: these jobs have a task in the broker (a crash before this leaves them unsent)."""
        pipe = self._r.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hset(_key(job_id), "task_sent", "1")
        pipe.execute()

    def unsent_pending(self) -> list[int]:
        """Pending jobs whose task never reached the broker (the API died between the two writes)."""
        ids = [int(i) for i in self._r.zrange(P + "pending", 0, -1)]
        pipe = self._r.pipeline(transaction=False)
        for job_id in ids:
            pipe.hget(_key(job_id), "task_sent")
        return [job_id for job_id, sent in zip(ids, pipe.execute(), strict=True) if not sent]

    def publish_settings(self, values: dict[str, Any]) -> None:
        """The API's reliability settings, for the Celery workers (they have no command line of ours)."""
        self._r.set(P + "settings", json.dumps(values))

    def shared_settings(self) -> dict[str, Any] | None:
        raw = self._r.get(P + "settings")
        return json.loads(raw) if raw else None

    def claim_next(self, server: str) -> Job | None:
        while True:
            head = self._r.zrange(P + "pending", 0, 0)
            if not head:
                return None
            job = self.claim(int(head[0]), server)
            if job is not None:
                return job

    def claim(self, job_id: int, server: str) -> Job | None:
        keys = [P + "pending", P + "processing", _key(job_id)]
        if not self._claim(keys=keys, args=[job_id, server, time.time()]):
            return None
        return self.get(job_id)

    def release(self, job_id: int, note: str) -> None:
        job = self.get(job_id)
        if job is None:
            return
        notes = with_note(job.notes, note)
        keys = [P + "pending", P + "processing", _key(job_id)]
        self._release(keys=keys, args=[job_id, time.time(), json.dumps(notes)])

    def record_update(self, job_id: int, update: dict[str, Any]) -> Job | None:
        status = COG_STATUS_MAP.get(str(update.get("status")))
        job = self.get(job_id)
        if status is None or job is None or job.status != PROCESSING:
            return None
        logs = update.get("logs") or ""
        now = time.time()
        fields: dict[str, Any] = {"status": status, "updated_at": now}
        if logs:
            fields["logs"] = log_tail(str(logs))
            progress = parse_progress(str(logs))
            if progress is not None:
                fields["progress"] = progress
        if update.get("output") is not None:
            fields["output"] = json.dumps(update["output"])
        if status in FINISHED_STATUSES:
            fields["finished_at"] = now
            canceled = f"canceled on the Cog server {job.server}" if status == CANCELED else ""
            fields["error"] = update.get("error") or canceled
            if status == SUCCEEDED:
                fields["progress"] = 100.0
        if not self._apply(job_id, PROCESSING, fields):
            return None
        return self.get(job_id)

    def finish(
        self, job_id: int, status: str, error: str | None = None, note: str | None = None
    ) -> Job | None:
        job = self.get(job_id)
        if job is None or job.status != PROCESSING:
            return None
        now = time.time()
        fields = {"status": status, "error": error or "", "finished_at": now, "updated_at": now}
        if note:
            fields["notes"] = json.dumps(with_note(job.notes, note))
        return self.get(job_id) if self._apply(job_id, PROCESSING, fields) else None

    def add_note(self, job_id: int, note: str, count_attempt: bool = False) -> None:
        job = self.get(job_id)
        if job is None:
            return
        fields = {"notes": json.dumps(with_note(job.notes, note)), "updated_at": time.time()}
        if count_attempt:
            fields["attempts"] = job.attempts + 1
        self._r.hset(_key(job_id), mapping=fields)

    def processing_jobs(self, server: str | None = None) -> list[Job]:
        jobs = [self.get(int(i)) for i in sorted(self._r.smembers(P + "processing"), key=int)]
        return [job for job in jobs if job and (server is None or job.server == server)]

    def purge_finished(self, before: float) -> int:
        waiting = self._r.smembers(P + "cancels")
        ids = [i for i in self._r.zrangebyscore(P + "finished", "-inf", before) if i not in waiting]
        if ids:
            pipe = self._r.pipeline(transaction=True)
            pipe.delete(*(_key(i) for i in ids))
            pipe.zrem(P + "finished", *ids)
            pipe.execute()
        return len(ids)

    def timings(self) -> dict[str, Any]:
        jobs = [self.get(int(i)) for i in self._r.zrange(P + "finished", 0, -1)]
        done = [j for j in jobs if j and j.status == SUCCEEDED and j.started_at and j.finished_at]
        head = self._r.zrange(P + "pending", 0, 0)
        oldest = self.get(int(head[0])) if head else None
        return timing_summary(
            [j.started_at - j.created_at for j in done],
            [j.finished_at - j.started_at for j in done],
            oldest.created_at if oldest else None,
        )

    def close(self) -> None:
        self._r.close()

    def _apply(self, job_id: int, expected: str, fields: dict[str, Any]) -> bool:
        args: list[Any] = [job_id, expected]
        for name, value in fields.items():
            args += [name, value]
        keys = [P + "pending", P + "processing", P + "finished", _key(job_id), P + "cancels"]
        return bool(self._transition(keys=keys, args=args))


SUMMARY_FIELDS = [
    "type",
    "status",
    "progress",
    "server",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "notes",
]


def _key(job_id: int | str) -> str:
    return f"{P}job:{job_id}"


def _float(value: str | None) -> float | None:
    return float(value) if value not in (None, "") else None


def _job(data: dict[str, str]) -> Job:
    return Job(
        id=int(data["id"]),
        type=data["type"],
        status=data["status"],
        input=json.loads(data["input"]),
        created_at=float(data["created_at"]),
        started_at=_float(data.get("started_at")),
        finished_at=_float(data.get("finished_at")),
        updated_at=_float(data.get("updated_at")),
        server=data.get("server") or None,
        attempts=int(data.get("attempts") or 0),
        progress=_float(data.get("progress")),
        logs=data.get("logs", ""),
        output=json.loads(data["output"]) if data.get("output") else None,
        error=data.get("error") or None,
        notes=json.loads(data.get("notes") or "[]"),
        launched=bool(data.get("launched")),
        cancel_pending=bool(data.get("cancel_pending")),
    )
