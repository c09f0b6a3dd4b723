"""The gateway-canary Pulumi program: read the stack config once, build one CanaryRelease, export its state.

Config is validated in full before any resource is registered (canary.release.stack_config.stack_args); a bad
value stops the program with one message listing every problem, and nothing reaches the cluster.
"""

import pulumi

from canary.release.component import CanaryRelease
from canary.release.stack_config import stack_args

args = stack_args(pulumi.get_project())
release = CanaryRelease(args["app_name"], args)
for output_name, value in release.outputs().items():
    pulumi.export(output_name, value)
