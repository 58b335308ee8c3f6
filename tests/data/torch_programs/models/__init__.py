"""Models shared by the corpus programs."""
