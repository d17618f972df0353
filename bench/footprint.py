"""B6: what a ticket, and a page with its audit trail, take in Redis."""

from __future__ import annotations

from typing import Any

from bench.driver import Driver


def b6(d: Driver) -> dict[str, Any]:
    """Redis footprint: lobby keys per ticket, and per page with its audit trail."""
    d.resolve_open_pages(d.branches)
    before = d.lobby_bytes()
    paths = [f"/api/v1/branches/{b.id}/tickets" for b in d.branches]
    run = d.load(d.url("kiosk"), paths, {"category": "personal"}, 600, d.plan.b6_tickets)
    tickets = run["statuses"].get(201, 0)
    after = d.lobby_bytes()
    sample = d.r.memory_usage(next(d.r.scan_iter(f"lobby:{{{d.branches[0].id}}}:ticket:*")), samples=0)
    pairs = [(b.id, c.id) for c in d.branches[0].counters for b in d.branches]
    before_pages = d.lobby_bytes()
    made = 0
    while made < d.plan.b6_pages:
        batch = pairs[: min(len(pairs), d.plan.b6_pages - made)]
        answer = d.press(d.url("counter"), [d.alert(b, c) for b, c in batch], 200)
        d.settle()
        made += sum(1 for _, _, status, _ in answer["sent"] if status == 202)
        d.resolve_open_pages(d.branches)
    after_pages = d.lobby_bytes()

    def per(delta: dict[str, int], count: int) -> dict[str, int] | None:
        return {k: round(v / count) for k, v in delta.items()} if count else None

    ticket_delta = {k: after[k] - before[k] for k in after}
    page_delta = {k: after_pages[k] - before_pages[k] for k in after_pages}
    per_ticket = sum(ticket_delta.values()) / tickets if tickets else None
    per_page = sum(page_delta.values()) / made if made else None
    return {
        "tickets": tickets, "bytes_per_ticket": round(per_ticket) if per_ticket else None,
        "kib_per_10k_tickets": round(per_ticket * 10_000 / 1024) if per_ticket else None,
        "ticket_split": per(ticket_delta, tickets), "ticket_hash_bytes": sample, "pages": made,
        "bytes_per_page": round(per_page) if per_page else None,
        "kib_per_1k_pages": round(per_page * 1000 / 1024) if per_page else None,
        "page_split": per(page_delta, made),
    }
