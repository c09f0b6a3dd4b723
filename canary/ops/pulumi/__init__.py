"""Adapter to Pulumi: the Automation API driver (stack.py), commands with a deadline (deadline.py), and a
local backend's files read directly (local_backend.py)."""
