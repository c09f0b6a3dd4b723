"""Metric gates (issue 14): the `analysis` config, the PromQL the checks run, the Prometheus client, verdicts.

config.py     the `analysis` key: validated, frozen AnalysisSettings (every problem names its path)
queries.py    the built-in PromQL and the custom checks' placeholders (pure)
prometheus.py the HTTP API client: an instant query -> one number, or a reason it is not one
verdict.py    numbers -> pass | fail | no data | error, with the figures behind it (pure)
gate.py       one analysis (queries + verdict) and the policy of a run over several
"""
