"""Working as a team: who acts (actor.py, recorded in every update's message) and the CLI's stack lock
(lock.py)."""
