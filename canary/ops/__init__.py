"""The operations side: what the `canary` CLI does around `pulumi up` (Automation API and apiserver).

Nothing under canary.release imports this package (tests/unit/test_layout.py): the Pulumi program never
needs the operations code, and the operations code reads the program's settings through canary.release's
validation so both agree on what a config means.
"""
