"""An update as stack history records it (HistoryEntry), who ran it, and the actor's trailer in its message.

Pure: entries come from the Automation API (canary.ops.pulumi.stack) or straight from a local backend's
files (canary.ops.pulumi.local_backend), and are read by the plans (canary.ops.core.plan), the status and
the timeline (canary.ops.rollout.timeline).

"Who" is the actor the `canary` CLI wrote into the update's message (`... [by NAME]`, canary.ops.team.actor
resolves it; with_actor writes it, split_actor reads it back), or the same trailer written by hand (`pulumi up
-m "... [by NAME]"`). Without one, the DIY backends (file, postgres://) record no person: the column then
shows
the author of the checked-out git commit (`git.author`, marked "(git author)": whoever wrote the commit, not
necessarily who ran the update), else the CI system Pulumi detected, else "unknown".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

SUCCEEDED = "succeeded"


FAILED = "failed"


IN_PROGRESS = "in-progress"


UNKNOWN = "unknown"


@dataclass(frozen=True)
class HistoryEntry:
    """One operation of the stack (update, refresh, destroy...), as stack history records it.

    `config` maps fully qualified keys ("gateway-canary:canaryWeight") to their values as strings.
    """

    kind: str
    result: str
    message: str
    start: datetime
    end: datetime | None
    config: Mapping[str, str]
    environment: Mapping[str, str]
    resource_changes: Mapping[str, int]

    @property
    def duration(self) -> timedelta | None:
        return None if self.end is None else self.end - self.start


def updated_by(environment: Mapping[str, str], message: str = "") -> str:
    """Who ran an update, as far as its record says: the actor in its message, else the git author (marked
    as such), else the CI system, else unknown."""
    actor = split_actor(message)[1]
    if actor:
        return actor
    author = environment.get("git.author")
    if author:
        return f"{author} (git author)"
    ci = environment.get("ci.system")
    if ci:
        return f"CI ({ci})"
    return UNKNOWN


def format_time(when: datetime) -> str:
    """A history timestamp in UTC, to the second (history keeps no finer)."""
    return when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


_TRAILER = re.compile(r"^(?P<message>.*?) ?\[by (?P<actor>[^\[\]]+)\]$", re.DOTALL)


def with_actor(message: str, actor: str) -> str:
    """The message an update records: `<message> [by <actor>]`."""
    return f"{message} [by {actor}]" if message else f"[by {actor}]"


def split_actor(message: str) -> tuple[str, str | None]:
    """(the message without its trailer, the actor) of a recorded message; (message, None) without one."""
    found = _TRAILER.match(message)
    if found is None:
        return message, None
    return found.group("message"), found.group("actor").strip()
