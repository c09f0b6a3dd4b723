"""The rollout commands: set config, preview, confirm, update (flows.py), what `canary status` reads
(status.py), and the one rollback decision (rollback.py)."""
