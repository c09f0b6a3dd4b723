"""Traffic safe before Pulumi: the route the program renders at canaryWeight 0, written after every check
(write.py). What is recorded afterwards, and when this path is taken, is canary.ops.rollout.rollback's."""
