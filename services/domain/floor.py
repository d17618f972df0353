"""The floor: the whole branch at a glance, for the manager's device (its 现场 · Floor tab).

Every counter (open, paused with its reason and the time left or over, or closed; the ticket it serves and for how
long, flagged past the category's long_service_minutes), every line (who waits, the longest wait, the estimate
for a ticket taken now), the redirects in force, and every screen, terminal and device (live, offline since when,
or never heard of). It is read from what the services keep, and written by none of them.
"""

from __future__ import annotations

import redis

from services.domain import presence
from services.domain.branch import Branch
from services.domain.clock import SYSTEM, Clock, from_ms, local_iso, parse_iso, to_ms
from services.domain.schemas import (
    Floor,
    FloorCounter,
    FloorEndpoint,
    FloorLine,
    FloorPause,
    FloorRedirect,
    FloorServing,
)
from services.domain.tickets import TicketReader


def snapshot(r: redis.Redis, branch: Branch, clock: Clock = SYSTEM) -> Floor:
    """Read the floor as it stands now."""
    moment = clock.now()
    now_ms = to_ms(moment)
    reader = TicketReader(r, branch, clock=clock)
    heads = reader.lines.category_heads([c.id for c in branch.categories])
    return Floor(
        branch=branch.id,
        at=local_iso(branch, moment),
        counters=[_counter(reader, branch, counter_id, now_ms) for counter_id in (c.id for c in branch.counters)],
        lines=[FloorLine(category=c.id, waiting=heads[c.id].count,
                         longest_wait_s=(now_ms - heads[c.id].oldest_ms) // 1000
                         if heads[c.id].oldest_ms is not None else None,
                         estimated_wait_s=reader.estimate(c.id, heads[c.id].count + 1))
               for c in branch.categories],
        redirects=[FloorRedirect(category=category, from_window=reader.window_of(rule.from_counter),
                                 to_window=reader.window_of(reader.targets.get(category)))
                   for category, rule in sorted(reader.rules.items())],
        endpoints=[_endpoint(p, branch) for p in presence.of(r, branch, presence.endpoints(branch), now_ms)],
    )


def _counter(reader: TicketReader, branch: Branch, counter_id: str, now_ms: int) -> FloorCounter:
    config = branch.counter(counter_id)
    assert config is not None
    state = reader.states[counter_id]
    pause = None
    if state.status == "paused" and state.pause:
        until_ms = to_ms(parse_iso(state.pause["until"]))
        pause = FloorPause(reason=state.pause["reason"], expected_minutes=state.pause["expected_minutes"],
                           since=state.pause["since"], until=state.pause["until"],
                           left_s=(until_ms - now_ms) // 1000)
    serving = None
    if state.serving:
        ticket = reader.get(state.serving) if state.serving_day in (None, reader.lines.day) else None
        category = branch.category_for_number(state.serving)
        since_ms = to_ms(parse_iso(ticket.called_at)) if ticket and ticket.called_at else None
        serving_s = (now_ms - since_ms) // 1000 if since_ms is not None else None
        serving = FloorServing(
            ticket=state.serving, category=category.id if category else "", since=ticket.called_at if ticket else None,
            serving_s=serving_s,
            long=bool(category and since_ms is not None and now_ms - since_ms >= category.long_service_ms),
        )
    return FloorCounter(id=counter_id, window=config.window, status=state.status, pause=pause, serving=serving)


def _endpoint(p: presence.Presence, branch: Branch) -> FloorEndpoint:
    kind, subject = p.endpoint.split(":", 1)
    since_ms = p.since_ms if p.live else p.offline_since_ms
    return FloorEndpoint(endpoint=p.endpoint, kind=kind, subject=subject, state=p.state,  # type: ignore[arg-type]
                         since=from_ms(since_ms, branch) if since_ms is not None else None)
