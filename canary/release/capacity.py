"""Capacity that follows traffic: how many pods each track runs at a weight, and in which order a change of
those counts and of the route must reach the cluster (pure; no Pulumi import).

The invariant every mode keeps, in both directions: a track that gets a share s > 0 of the weighted split has
at least `pods_for(R, s)` = ceil(R x s / 100) ready pods at every moment, R being the stable's full size.
So a track whose pod count goes up is scaled (and Available) before the route gives it more, and a track
whose pod count goes down is scaled only after the route took its share away and the proxies had
`settle_seconds` to drain (canary.release.component wires that order from `scale_downs`).

Argo Rollouts computes the same counts for a traffic-routed canary (docs/capacity-notes.md): canary
ceil(W x R / 100) floored at a minimum, stable R, or with dynamicStableScale ceil((100 - W) x R / 100).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from canary.names import Track
from canary.release.settings import ReleaseSettings


def pods_for(full: int, share: Decimal) -> int:
    """ceil(full x share / 100): the pods a track needs to carry `share` percent of what `full` pods carry."""
    return math.ceil(Decimal(full) * share / Decimal(100))


def canary_share(settings: ReleaseSettings) -> Decimal:
    """The canary's percent of the weighted split (0 without a canary)."""
    return settings.canary_percent if settings.has_canary else Decimal(0)


def track_share(settings: ReleaseSettings, track: Track, canary_percent: Decimal | None = None) -> Decimal:
    """A track's percent of the weighted split at `canary_percent` (default: the settings' own weight)."""
    canary = canary_share(settings) if canary_percent is None else canary_percent
    return canary if track == "canary" else Decimal(100) - canary


def replicas(settings: ReleaseSettings, track: Track, canary_percent: Decimal | None = None) -> int:
    """The pods a track runs at `canary_percent` (default: the settings' own weight)."""
    full = settings.stable_replicas
    share = track_share(settings, track, canary_percent)
    capacity = settings.capacity
    if track == "canary":
        if capacity.canary == "fixed":
            return settings.canary_replicas
        return max(settings.canary_replicas, pods_for(full, share))
    if capacity.stable == "full":
        return full
    return stable_following_traffic(full, Decimal(100) - share)


def stable_following_traffic(full: int, canary_percent: Decimal) -> int:
    """The stable's pods with capacity.stable "traffic": its share's, and never none."""
    return max(1, pods_for(full, Decimal(100) - canary_percent))


def scale_downs(settings: ReleaseSettings, previous_canary_percent: Decimal | None) -> frozenset[Track]:
    """The tracks whose pod count goes down in this update, so whose Deployment waits for the route (and the
    settle time) instead of the route waiting for it. None (no earlier weight known: a first update, or a
    program that did not say) means none: every Deployment before the route, as a first deploy needs."""
    if previous_canary_percent is None or settings.autoscaling is not None:
        return frozenset()
    was_canary = previous_canary_percent if settings.has_canary else Decimal(0)
    return frozenset(
        track
        for track in ("stable", "canary")
        if (track == "stable" or settings.has_canary)
        and replicas(settings, track) < replicas(settings, track, was_canary)
    )


@dataclass(frozen=True)
class ScaleStep:
    """One track's pod count change in an update, and whether it happens before or after the route."""

    track: Track
    before: int
    after: int

    @property
    def after_route(self) -> bool:
        """Scale-downs wait for the route; scale-ups come first."""
        return self.after < self.before


def scale_steps(settings: ReleaseSettings, previous_canary_percent: Decimal) -> list[ScaleStep]:
    """The pod count changes a move from `previous_canary_percent` to the settings' weight makes, in the
    order they happen: scale-ups, then (the route), then scale-downs. Tracks that keep their count are left
    out; a canary that did not exist before starts from its count at weight 0 (the route has not reached
    it)."""
    steps = [
        ScaleStep(track, replicas(settings, track, previous_canary_percent), replicas(settings, track))
        for track in (("canary", "stable") if settings.has_canary else ("stable",))
    ]
    changed = [step for step in steps if step.before != step.after]
    return sorted(changed, key=lambda step: step.after_route)


def invariant_problems(full: int, shares: Mapping[str, Decimal], ready: Mapping[str, int]) -> list[str]:
    """What breaks the invariant at one moment: a track with a share s > 0 of the split and fewer than
    ceil(full x s / 100) ready pods. The tests check every watched event with this, the same formula the
    release sizes tracks by."""
    return [
        f"{track} carries {share}% with {ready.get(track, 0)} ready pods (needs {pods_for(full, share)})"
        for track, share in sorted(shares.items())
        if share > 0 and ready.get(track, 0) < pods_for(full, share)
    ]
