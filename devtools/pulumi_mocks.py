"""The state Pulumi mocks hand back for a registration, shared by the unit tests' and the bench's mocks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pulumi

STACK_REFERENCE = "pulumi:pulumi:StackReference"


def mocked_state(args: pulumi.runtime.MockResourceArgs, stack_outputs: Mapping[str, Any]) -> dict[str, Any]:
    """A resource's inputs echoed back as its state; a StackReference (the release reading its own stack's
    last update) reads `stack_outputs` ({}: a stack never updated)."""
    if args.typ == STACK_REFERENCE:
        return {**args.inputs, "outputs": dict(stack_outputs)}
    return dict(args.inputs)
