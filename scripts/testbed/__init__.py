"""The local cluster's real data plane (issue 12): real Envoys and real podinfo for kwok's fake pods.

kwok fakes kubelets: pods get an IP and turn Ready, but nothing runs. `supervisor` (started by
`scripts/cluster.sh up`, stopped by `down`) makes the traffic real:

- for every envoy Deployment Envoy Gateway renders for a Gateway of class `eg`, one real Envoy with the
  bootstrap from that Deployment, in a network namespace of its own (`envoy`, `net`);
- for every Ready pod of a Deployment in a release namespace, one podinfo process answering on the pod IP and
  container port, in the apps namespace where the whole pod CIDR is local (`apps`, `net`);
- the Gateway's address (its envoy Service's ClusterIP) routed from the host into that Envoy's namespace.

Traffic only ever goes to loopback or into these namespaces; `netcheck` checks an address before load is sent.
Addresses and names: `addresses.env` and `plan`.
"""
