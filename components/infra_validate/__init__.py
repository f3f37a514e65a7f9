"""infra_validate [InfraValidator]: the candidate must really serve, and serve what training predicts."""
