"""ConfigError inside a Pulumi program: raised as a pulumi.RunError, which the language host prints bare.

canary.release.validate has no Pulumi import (the CLI and the fast rollback import it, and `import pulumi`
costs about 0.5 s), so its ConfigError is a plain Exception. The program's entry points (stack_config.
stack_args, the component's validation and rendering, also inside `apply` when Outputs resolve) pass their
errors through `as_run_error`, so `pulumi up` shows the list of problems and no traceback.
"""

import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import pulumi

from canary.release.validate import ConfigError

P = ParamSpec("P")
R = TypeVar("R")


class ProgramConfigError(ConfigError, pulumi.RunError):
    """A ConfigError as a pulumi.RunError: still caught by `except ConfigError`, printed without traceback."""


def as_run_error(func: Callable[P, R]) -> Callable[P, R]:
    """`func`, with any ConfigError it raises re-raised as a ProgramConfigError (same problems)."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except ProgramConfigError:
            raise
        except ConfigError as err:
            raise ProgramConfigError(err.problems) from None

    return wrapper
