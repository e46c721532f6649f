"""Deploying to AWS (local tooling, not deployed): the resources stack, recorded
outputs and policies, chalice deploy, and the steps Chalice has no setting for."""
