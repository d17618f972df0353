"""The live feeds: one Redis stream per branch and audience (the lobby screen, the managers' devices, each
counter's terminal), capped at the branch's `stream_maxlen`. What changes is appended here, in the same MULTI or
pipeline as the change where it matters; services/web/sse.py serves the streams as Server-Sent Events.

Every entry has two fields, `type` (the event) and `data` (one JSON object). Pub/sub is never used: it forgets
what nobody heard.
"""

from __future__ import annotations

import json
from typing import Any

import redis

from services.domain import keys
from services.domain.branch import Branch


def append(r: redis.Redis | redis.client.Pipeline, branch: Branch, audience: str, event: str,
           data: dict[str, Any]) -> Any:
    """Append one event to a branch's feed for an audience (keys.SCREEN, keys.DEVICE, keys.terminal(counter))."""
    return r.xadd(keys.stream(branch.id, audience), {"type": event, "data": dumps(data)},
                  maxlen=branch.stream_maxlen, approximate=True)


def dumps(data: dict[str, Any]) -> str:
    # json.dumps escapes control characters, so a value with newlines can never split an SSE frame.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"))
