"""Models: drivers (elasticities), retention (churn hazard), sampling, fit and bundle."""
