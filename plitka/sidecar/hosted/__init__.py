"""Hosted GPU backends (Replicate, RunPod) behind the sidecar's one dispatcher (docs/scaling.md)."""
