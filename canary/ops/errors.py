"""How an operation ends when it does not succeed: refused (exit 1), unusable (exit 2), Pulumi failed (1),
stopped by a signal (130 for Ctrl-C, 143 for SIGTERM)."""


class Refused(Exception):
    """The command will not act; the message says why and what to do instead (exit 1)."""


class UsageProblem(Exception):
    """The command cannot even start: no project or no stack to work on (exit 2)."""


class PulumiFailed(Exception):
    """A Pulumi command failed. `detail` is its full output; `streamed` says it was already shown live."""

    def __init__(self, what: str, detail: str, *, streamed: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.detail = detail
        self.streamed = streamed


class ClusterUnreachable(Exception):
    """kubectl could not read the apiserver (down, unreachable, or refusing): nothing was changed (exit 1)."""


class TrafficProblem(Refused):
    """Traffic was not sent or cannot be judged: a target outside loopback and the project's own network
    namespaces, an address that does not answer, responses that name no version (exit 1)."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived (`kill PID`, a cancelled CI job, a stopped container). A KeyboardInterrupt, so that
    every place that handles Ctrl-C handles it the same way: a running Pulumi update is interrupted once
    (canary.ops.pulumi.deadline) and the command says what it leaves behind; the CLI then exits 143, not
    130."""
