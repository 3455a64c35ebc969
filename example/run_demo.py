"""Placeholder until the demo lands."""

print("demo not built yet")
