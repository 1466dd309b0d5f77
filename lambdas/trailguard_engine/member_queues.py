"""The member accounts' forwarding dead-letter queues, read from the security account (issue 20).

Every member stack (each governed account and region) has one dead-letter queue for its forwarding
rules, named ``trailguard-forward-dlq``. An event in it is a detection that never reached the
engine, so a non-empty queue anywhere must be visible centrally. The member stack alarms on it
locally; this module is the roll-up the hourly drift sweep runs: it assumes the member remediation
role (which may ``sqs:GetQueueAttributes`` on that one queue name, nothing else of SQS) and reads
the queue's depth in every (account, governed region) of the roster.

Why a pull from the sweep rather than a push (a metric stream, cross-account observability, or the
member alarm's state change forwarded on the event path): a push is silent exactly when it fails.
A member admin who deletes the queue, the alarm or a link stops the data, and an alarm on missing
data cannot tell "no account sent anything" from "nothing is wrong". A read that fails is an
explicit answer: the sweep reports "cannot read DLQ depth in account X" (never zero) and the
function fails, so its error alarm fires too. A purge between two sweeps does read as zero: the
queue's CloudTrail events (``PurgeQueue``, ``DeleteQueue``) are the signal for that.

The roster: the accounts the deployment itself names (the management account in organization mode,
the one account standalone) plus every account and region whose CloudTrail digests the verifier
saw in the archive within :data:`ROSTER_MAX_AGE_S` (``digest-heads#<account>``, written by the
digest verifier only). CloudTrail writes those for every account of the organization trail, so an
account that joins appears within about an hour, without a redeploy and without any input a member
account controls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from trailguard_engine.clients import ClientFactory
from trailguard_engine.remediations import error_code

#: The forwarding dead-letter queue's name in every member account and region (``stacks/member.py``).
FORWARD_DLQ_NAME = "trailguard-forward-dlq"
#: Accounts and regions whose newest digest is older than this are left to the verifier's
#: missing-digest alert (an account that left the organization stops delivering).
ROSTER_MAX_AGE_S = 7 * 24 * 3600
#: Queues read at once (each read is one GetQueueAttributes; the first in an account also assumes the role).
WORKERS = 8
#: The attributes summed as the queue's depth: messages waiting and messages someone received but has not
#: deleted (a member admin reading the queue hides messages for the visibility timeout, not from this).
DEPTH_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


@dataclass(frozen=True, slots=True)
class QueueDepth:
    """One queue's depth, or why it could not be read (``depth`` is None then, never 0)."""

    account: str
    region: str
    queue_arn: str
    depth: int | None
    error: str = ""

    @property
    def readable(self) -> bool:
        return self.depth is not None


def roster(
    heads: Mapping[tuple[str, str], str],
    *,
    fixed_accounts: Iterable[str],
    regions: Iterable[str],
    now: float,
    max_age_s: float = ROSTER_MAX_AGE_S,
) -> list[tuple[str, str]]:
    """Every (account, region) whose forwarding queue is read, sorted.

    ``heads`` is the verifier's ``{(account, region): end time of the newest digest}``; only the
    governed ``regions`` count (the member stack is deployed there only). ``fixed_accounts`` are read
    in every governed region whatever the digests say.
    """
    governed = sorted(set(regions))
    out = {(a, r) for a in fixed_accounts if a for r in governed}
    for (account, region), end in heads.items():
        if region not in governed:
            continue
        try:
            age = now - datetime.fromisoformat(end.replace("Z", "+00:00")).timestamp()
        except ValueError:
            age = 0.0  # an unparsable head is still an account we know of: read it
        if age <= max_age_s:
            out.add((account, region))
    return sorted(out)


class ForwardQueueReader:
    """Reads ``trailguard-forward-dlq`` in member accounts through the member role."""

    def __init__(self, *, factory: ClientFactory, queue_name: str = FORWARD_DLQ_NAME, workers: int = WORKERS) -> None:
        self.factory = factory
        self.queue_name = queue_name
        self.workers = workers

    def queue_arn(self, account: str, region: str) -> str:
        partition = self.factory.role_arn(account).split(":")[1]
        return f"arn:{partition}:sqs:{region}:{account}:{self.queue_name}"

    def read(self, account: str, region: str) -> QueueDepth:
        """The depth of one queue; every failure (role, queue missing, access denied) is an unreadable result."""
        arn = self.queue_arn(account, region)
        try:
            sqs = self.factory.member(account, region).client("sqs", region)
            url = f"{sqs.meta.endpoint_url.rstrip('/')}/{account}/{self.queue_name}"
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(DEPTH_ATTRIBUTES))["Attributes"]
            depth = sum(int(attrs[a]) for a in DEPTH_ATTRIBUTES)
        except Exception as exc:
            code = error_code(exc) or type(exc).__name__
            return QueueDepth(account, region, arn, None, f"{code}: {exc}"[:500])
        return QueueDepth(account, region, arn, depth)

    def read_all(
        self, where: Iterable[tuple[str, str]], read: Callable[[str, str], QueueDepth] | None = None
    ) -> list[QueueDepth]:
        """Every queue of ``where``, in that order (read in parallel)."""
        one = read or self.read
        pairs = list(where)
        if not pairs:
            return []
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(pairs)))) as pool:
            return list(pool.map(lambda p: one(*p), pairs))
