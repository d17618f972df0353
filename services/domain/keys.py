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
    """Set of the business days not closed yet: a day joins when a ticket is issued, a page made or a pause
    ended on it; closing it after its end (tickets.close_past_days) expires its lines and moves it to
    closed_days."""
    return f"{branch(branch_id)}:days"


def closed_days(branch_id: str) -> str:
    """Set of the closed business days whose records Redis still holds: each waits to be archived, then for
    retention to remove it once older than the branch's redis_days."""
    return f"{branch(branch_id)}:closed-days"


def archived(branch_id: str) -> str:
    """Hash: business day -> JSON of its archive (when, and the rows of each table), for the days the records
    database holds; the report reads such a day from the database."""
    return f"{branch(branch_id)}:archived"


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
    """Hash of the branch's running counts for /metrics (services/web/metrics.py)."""
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


def allowance(branch_id: str, who: str, window_s: int, window_start: int) -> str:
    """Counter of what one client (a kiosk, a terminal) did in one fixed rate-limit window; expires with it."""
    return f"{branch(branch_id)}:allowance:{who}:{window_s}:{window_start}"


def terminal(counter_id: str) -> str:
    """The audience of one counter's terminal feed."""
    return f"counter:{counter_id}"


def terminal_stream(branch_id: str, counter_id: str) -> str:
    return stream(branch_id, terminal(counter_id))


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


def page_news() -> str:
    """Stream of what became of alerts' pages, for the counter workers of one Redis (each entry one PageEvent)."""
    return f"{PREFIX}:page-news"


def page_open_for(branch_id: str) -> str:
    """Hash: "<counter>:<kind>" -> id of the unresolved page that repeat presses fold into."""
    return f"{branch(branch_id)}:page-open-for"


def timers(branch_id: str) -> str:
    """Sorted set: "<page id>:<repeat|escalate>" -> when it is due (ms). The durable truth of timers."""
    return f"{branch(branch_id)}:timers"


def vip_wait_paged(branch_id: str, day: str) -> str:
    """Hash: ticket number -> id of the alert that paged its long wait, for the tickets of a day."""
    return f"{branch(branch_id)}:vip-wait-paged:{day}"


def cleared(branch_id: str) -> str:
    """Hash: alert id -> JSON {at, reason} of alerts whose condition ended (a paused counter resumed, a customer
    waiting long was called); their pages are cleared by the system, and no timer of theirs fires again."""
    return f"{branch(branch_id)}:cleared"


def presence_streams(branch_id: str, endpoint: str) -> str:
    """Set of an endpoint's open event streams (connection ids); it lapses when the endpoint goes unheard."""
    return f"{branch(branch_id)}:presence:streams:{endpoint}"


def presence(branch_id: str, endpoint: str) -> str:
    """Hash of when an endpoint was last heard of (`seen`) and since when it is connected (`since`), in ms."""
    return f"{branch(branch_id)}:presence:{endpoint}"


def incidents(branch_id: str) -> str:
    """Hash of the supervision incidents paged and not over: field `<kind>:<subject>`, value JSON (alert id, since
    when in ms); services/domain/supervision.py."""
    return f"{branch(branch_id)}:incidents"


def worker(name: str) -> str:
    """Hash of a running worker process (its service, pid, host, last heartbeat); it lapses when the worker stops."""
    return f"{PREFIX}:worker:{name}"


# Stream of revoked tokens (field `token_key`, the token's key): every live stream reads it in the same XREAD as
# its events, so a revocation ends the streams opened with the token before any event written after it.
REVOCATIONS = f"{PREFIX}:revocations"
# Entries REVOCATIONS keeps: a reader only needs those written while it was between two reads.
REVOCATIONS_MAXLEN = 1000
# Start of the keys that wake a web process's stream reader (a stream each, of one entry, expiring); hub.py.
HUB_WAKE = f"{PREFIX}:hub-wake:"
# Hash of what each web process holds (field `<service>/<host>/<pid>`, value JSON: clients, streams followed,
# readers, Redis connections, when); services/web/hub.py.
WEB_PROCESSES = f"{PREFIX}:web-processes"
