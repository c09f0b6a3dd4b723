"""The `canary` command: argument parsing and printing only; what it does is in canary.ops."""
