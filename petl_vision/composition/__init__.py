"""Adapter composition: libraries of adapters on disk, weight-space mixing of adapters."""
