"""Plitka Pro sidecar: a durable job queue, dispatcher and operator page in front of Cog servers.

Cog runs one prediction at a time and cannot report queue state; this service owns the queue
(`GET /queue_status`, `POST /clear_queue` of DESIGN §8, plus job endpoints) and feeds the
servers. Start it with `python -m plitka.sidecar --cog-url http://127.0.0.1:5000`.
"""
