"""Online multi-turn training: rollouts in which the policy talks to a user simulator (:mod:`.rollout`)."""
