"""The gateway-canary Pulumi program: read the stack config once, build one CanaryRelease, export its state.

Config is validated in full before any resource is registered (canary.config.parse_config); a bad value stops
the program with one message listing every problem, and nothing reaches the cluster.
"""

import pulumi

from canary.component import CanaryRelease
from canary.config import parse_config, read_secret_keys, read_stack_config

args = parse_config(read_stack_config(pulumi.get_project()), read_secret_keys(pulumi.get_project()))
release = CanaryRelease(args.app_name, args)
for output_name, value in release.outputs().items():
    pulumi.export(output_name, value)
