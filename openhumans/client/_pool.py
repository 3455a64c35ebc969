"""One connection pool per process and (base URL, timeout), shared by every caller.

Building an ``httpx.Client`` per call throws away keep-alive and costs CPU; httpx and
openai-python build one and reuse it. The pools here are created on first use, closed at
interpreter exit, forgotten (never reused) in a forked child, and keyed by the settings
values the caller read, so a changed setting (``override_settings``) gets its own pool.
"""

from __future__ import annotations

import atexit
import os
import threading
from dataclasses import dataclass

import httpx

from ._http import check_timeout, new_http_client, parse_base_url

__all__ = ["SharedPool", "close_shared_pools", "shared_pool"]

#: Pools kept at most; the oldest is closed past this (only tests change settings that often).
MAX_POOLS = 16


@dataclass(frozen=True)
class SharedPool:
    """A base URL, parsed once, and the thread-safe httpx client that talks to it."""

    base_url: httpx.URL
    http: httpx.Client


_pools: dict[tuple[str, float], SharedPool] = {}
_lock = threading.Lock()


def shared_pool(base_url: str, timeout: float) -> SharedPool:
    """Return this process's pool for ``base_url`` and ``timeout``, creating it on first use.

    Raises InvalidArgumentError for a base URL that is not http(s) or a bad timeout.
    """
    key = (base_url, timeout)
    pool = _pools.get(key)  # the hot path: one dict lookup, no lock
    if pool is None:
        with _lock:
            pool = _pools.get(key)
            if pool is None:
                pool = SharedPool(
                    parse_base_url(base_url), new_http_client(check_timeout(timeout), None)
                )
                while len(_pools) >= MAX_POOLS:
                    _pools.pop(next(iter(_pools))).http.close()
                _pools[key] = pool
    return pool


def close_shared_pools() -> None:
    """Close every shared pool; the next call creates a new one (called at exit)."""
    with _lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.http.close()


def _forget_pools_in_child() -> None:
    # A forked child must never reuse (or close, which could deadlock on a lock a parent
    # thread held at fork time) the parent's connections: drop them and start afresh.
    global _lock
    _pools.clear()
    _lock = threading.Lock()


atexit.register(close_shared_pools)
os.register_at_fork(after_in_child=_forget_pools_in_child)
