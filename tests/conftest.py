"""Shared fixtures. The ``oh_sandbox`` fixture comes from the ``openhumans.testing`` plugin."""
