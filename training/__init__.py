"""Training and evaluation of the expression classifier (never imported by the running service)."""
