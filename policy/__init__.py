"""gateway-canary's guardrails, a pulumi-policy pack: `pulumi preview --policy-pack policy`."""
