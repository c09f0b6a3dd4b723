"""`canary verify`: bounded real requests (traffic.py), the split judged against the live route (split.py),
and the command's flow from stack to verdict (flow.py)."""
