"""`python -m canary`: the same command as the `canary` console script."""

from canary.cli.main import main

raise SystemExit(main())
