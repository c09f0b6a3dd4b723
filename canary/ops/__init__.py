"""The operations side: what the `canary` CLI does around `pulumi up` (Automation API and apiserver).

Capabilities, each a folder named for what a user asks of it, over adapters to the two external systems:

    fast/      traffic safe before Pulumi: the checked write of the route the program renders at 0
    rollout/   step, promote, status, the timeline, and THE rollback decision (fast write or `pulumi up`)
    verify/    real requests through the Gateway, counted and judged against the live route
    gates/     metric gates: Prometheus queries, verdicts, and `canary run`'s walk
    team/      who acts and the CLI's stack lock
    ----------------------------------------------------------------------------------------------------
    core/      plain data and pure decisions every capability shares: the stack's state, history
               entries, the plans of step / promote / rollback, the operations-only settings
    pulumi/    adapter: the Automation API driver (Release), the deadline, the local backend's files
    kube/      adapter: the one apiserver client family (kubectl, HTTPS, the direct reader over it)
    files/     adapter: this machine's files the CLI keeps and reads (remembered documents, YAML parses)
    errors.py  how an operation ends

Imports run downward (tests/unit/test_layout.py): adapters and core import no capability, fast/ imports
no rollout/, and nothing in canary/ is in an import cycle. Nothing under canary.release imports this
package: the Pulumi program never needs the operations code, and the operations code reads the program's
settings through canary.release's validation so both agree on what a config means.
"""
