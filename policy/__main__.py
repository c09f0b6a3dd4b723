"""What the Pulumi engine runs for the pack (`python <pack directory>`): serve the guardrails.

The engine starts this file as a script, so only the pack directory is on sys.path; putting the repository
root there makes the pack's modules the same `policy.*` (and `canary.*`) modules the tests import.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from policy.pack import serve

serve()
