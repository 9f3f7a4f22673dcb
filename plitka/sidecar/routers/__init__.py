"""HTTP routers of the sidecar, one concern each (queue, jobs, backend, health, page, webhooks)."""
