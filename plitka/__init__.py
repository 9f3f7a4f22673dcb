"""Plitka Pro: photorealistic rubber crumb tiles in an exact mix of colours."""

__version__ = "0.1.0"
