"""Redis key names. Every key of a branch carries the `{branch}` hash tag, so it shares one slot."""

PREFIX = "lobby"

# Stream names of the live views, one per audience.
SCREEN = "screen"
DEVICE = "device"


def branch(branch_id: str) -> str:
    return f"{PREFIX}:{{{branch_id}}}"


def ticket_seq(branch_id: str, day: str, category: str) -> str:
    """Counter behind the numbers of one category on one day (V001, V002, ...)."""
    return f"{branch(branch_id)}:seq:{day}:{category}"


def ticket(branch_id: str, day: str, number: str) -> str:
    return f"{branch(branch_id)}:ticket:{day}:{number}"


def ticket_root(branch_id: str) -> str:
    """Start of every ticket key of a branch; the day and the number follow (see ticket)."""
    return f"{branch(branch_id)}:ticket:"


def days(branch_id: str) -> str:
    """Set of the business days that still have open lines; the day's expiry removes it."""
    return f"{branch(branch_id)}:days"


def line(branch_id: str, day: str, category: str) -> str:
    """Sorted set of the waiting tickets of one category: member number, score issue time (ms)."""
    return f"{branch(branch_id)}:line:{day}:{category}"


def counter_line(branch_id: str, day: str, counter_id: str) -> str:
    """Sorted set of the tickets transferred to one counter, by issue time (ms)."""
    return f"{branch(branch_id)}:line:{day}:counter:{counter_id}"


def service_times(branch_id: str, day: str, category: str) -> str:
    """List of the latest service times (ms) of a category on a day, newest first."""
    return f"{branch(branch_id)}:service:{day}:{category}"


def service_root(branch_id: str) -> str:
    return f"{branch(branch_id)}:service:"


def pauses(branch_id: str, day: str) -> str:
    """List of the pauses that ended on a day (JSON: counter, reason, expected and actual minutes), for reports."""
    return f"{branch(branch_id)}:pauses:{day}"


def stats(branch_id: str) -> str:
    """Hash of the branch's running counts for /metrics (services/common/metrics.py)."""
    return f"{branch(branch_id)}:stats"


def calls(branch_id: str, day: str) -> str:
    """List of the latest calls, newest first, as JSON."""
    return f"{branch(branch_id)}:calls:{day}"


def counter(branch_id: str, counter_id: str) -> str:
    return f"{branch(branch_id)}:counter:{counter_id}"


def redirects(branch_id: str) -> str:
    """Hash: category -> JSON of the redirect in force for it."""
    return f"{branch(branch_id)}:redirects"


def stream(branch_id: str, audience: str) -> str:
    return f"{branch(branch_id)}:stream:{audience}"


def ticket_allowance(branch_id: str, client: str, window_s: int, window_start: int) -> str:
    """Counter of the tickets one kiosk client took in one fixed rate-limit window; expires with the window."""
    return f"{branch(branch_id)}:allowance:{client}:{window_s}:{window_start}"


def terminal_stream(branch_id: str, counter_id: str) -> str:
    return stream(branch_id, f"counter:{counter_id}")


def alert(branch_id: str, alert_id: str) -> str:
    return f"{branch(branch_id)}:alert:{alert_id}"


def outbox(branch_id: str) -> str:
    """Hash: alert id -> page request JSON, for alerts whose page is not written yet."""
    return f"{branch(branch_id)}:outbox"


def outbox_times(branch_id: str) -> str:
    """Sorted set: alert id -> time (ms) it entered the outbox."""
    return f"{branch(branch_id)}:outbox:times"


def page(branch_id: str, page_id: str) -> str:
    return f"{branch(branch_id)}:page:{page_id}"


def page_for_alert(branch_id: str) -> str:
    """Hash: alert id -> page id; makes page creation idempotent per alert."""
    return f"{branch(branch_id)}:page-for-alert"


def pages_all(branch_id: str) -> str:
    return f"{branch(branch_id)}:pages:all"


def pages_active(branch_id: str) -> str:
    """Sorted set of pages not yet resolved, by creation time (ms)."""
    return f"{branch(branch_id)}:pages:active"


def token(branch_id: str, token_id: str) -> str:
    return f"{branch(branch_id)}:token:{token_id}"


def tokens(branch_id: str) -> str:
    return f"{branch(branch_id)}:tokens"


def idempotency(branch_id: str, caller: str, key: str) -> str:
    return f"{branch(branch_id)}:idem:{caller}:{key}"


def screens_stale() -> str:
    """Set of branch ids whose lobby screen shows fewer tickets than were issued; the kiosk worker redraws them."""
    return f"{PREFIX}:screens-stale"


def outbox_branches() -> str:
    """Set of branch ids that have ever used the outbox, so a sweeper knows where to look."""
    return f"{PREFIX}:outbox-branches"


def page_requests() -> str:
    """Stream of page requests on one Redis (branch id and alert id per entry), which the pager workers read as
    one consumer group; global like outbox_branches, since a worker serves every branch of its Redis."""
    return f"{PREFIX}:page-requests"


def page_open_for(branch_id: str) -> str:
    """Hash: "<counter>:<kind>" -> id of the unresolved page that repeat presses fold into."""
    return f"{branch(branch_id)}:page-open-for"


def timers(branch_id: str) -> str:
    """Sorted set: "<page id>:<repeat|escalate>" -> when it is due (ms). The durable truth of timers."""
    return f"{branch(branch_id)}:timers"


def vip_wait_paged(branch_id: str, day: str) -> str:
    """Set of the tickets of a day already paged for waiting too long."""
    return f"{branch(branch_id)}:vip-wait-paged:{day}"


def pause_overrun_paged(branch_id: str) -> str:
    """Set of pause alert ids whose overrun has been paged."""
    return f"{branch(branch_id)}:pause-overrun-paged"
