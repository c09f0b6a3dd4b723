"""What `pulumi up` imports: the CanaryRelease component, its args, validation and the pure specs.

Nothing here imports canary.ops or canary.cli (tests/unit/test_layout.py keeps it so).
"""
