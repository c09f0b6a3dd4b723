"""Plain data and pure decisions the capabilities share, with no I/O: the stack's state (state.py), its
history entries (history.py), the plans of step, promote and rollback (plan.py), and the operations-only
settings (settings.py, analysis.py)."""
