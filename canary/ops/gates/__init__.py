"""Metric gates: the PromQL the checks run, the Prometheus client, verdicts, and `canary run`'s walk.

queries.py    the built-in PromQL and the custom checks' placeholders (pure)
prometheus.py the HTTP API client: an instant query -> one number, or a reason it is not one
verdict.py    numbers -> pass | fail | no data | error, with the figures behind it (pure)
gate.py       one analysis (queries + verdict) and the policy of a run over several
run.py        `canary analyze`, `step --gate` and `canary run`

The `analysis` config key itself is read with the other operations-only settings (canary.ops.core.analysis).
"""
