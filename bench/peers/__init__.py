"""The peers of the side-by-side bench (issue 26): Flagger and Argo Rollouts beside the local cluster."""
