"""The organization's account list for the engine: ``organizations:ListAccounts``, cached, read-only.

Decisions judge a share with a specific account (a bucket policy, a role trust, a key policy, a snapshot,
an AMI, a Lambda permission) against the accounts that are ours (:func:`trailguard_engine.policy.known_accounts`).
Replay takes the organization's accounts from the config file (``organization.accounts``); the engine adds
the organization's live list, read here with the engine's own credentials in the account it runs in (the
security tooling account, as ``trailguard-athena-accounts`` does; ``ListAccounts`` works there when that
account is a delegated administrator, docs/deploy.md). Nothing in an event can add an account: the list
comes from the API alone, and a value that is not exactly twelve ASCII digits fails the whole read.

Cache:

* a good list is used for :data:`TTL_SECONDS` (accounts join rarely; a new account is "unknown", hence
  alerted, for at most that long);
* when a refresh fails, the last good list is kept for at most :data:`MAX_STALE_SECONDS` after it was
  read, then the list is *unknown* (None): every account that is not configured looks external, so shares
  are alerted, never silenced. No decision remediates because an account is outside the organization:
  an unknown list can only add alerts;
* after a failure the call is retried no sooner than :data:`RETRY_SECONDS` later, so a denied or throttled
  ListAccounts costs one call a minute, not one per event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

TTL_SECONDS = 900.0
RETRY_SECONDS = 60.0
MAX_STALE_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """One read of the list: the accounts (None: unknown) and the error that made it unknown or stale."""

    accounts: frozenset[str] | None
    error: str | None = None


class OrgAccounts:
    """``get()`` returns the organization's accounts, or None when they are unknown (see the module docstring).

    ``fetch`` makes the API call (``athena_accounts.organization_accounts`` on an Organizations client) and
    raises on any failure; ``clock`` is seconds (the engine's clock, injected so tests need no sleep).
    """

    def __init__(
        self,
        fetch: Callable[[], frozenset[str]],
        *,
        clock: Callable[[], float],
        ttl: float = TTL_SECONDS,
        retry: float = RETRY_SECONDS,
        max_stale: float = MAX_STALE_SECONDS,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._ttl = ttl
        self._retry = retry
        self._max_stale = max_stale
        self._lock = threading.Lock()
        self._accounts: frozenset[str] | None = None
        self._read_at: float | None = None
        self._failed_at: float | None = None
        self.last_error: str | None = None
        self.calls = 0

    def get(self) -> Snapshot:
        now = self._clock()
        with self._lock:
            if self._read_at is not None and now - self._read_at < self._ttl:
                return Snapshot(self._accounts)
            if self._failed_at is not None and now - self._failed_at < self._retry:
                return self._stale(now)
            self.calls += 1
            try:
                accounts = self._fetch()
            except Exception as exc:  # any failure (denied, throttled, not in an organization, bad data)
                self._failed_at = now
                self.last_error = f"organizations:ListAccounts failed: {type(exc).__name__}: {exc}"[:500]
                return self._stale(now)
            self._accounts, self._read_at, self._failed_at, self.last_error = accounts, now, None, None
            return Snapshot(accounts)

    def _stale(self, now: float) -> Snapshot:
        if self._read_at is not None and now - self._read_at < self._max_stale:
            return Snapshot(self._accounts, self.last_error)
        return Snapshot(None, self.last_error)
