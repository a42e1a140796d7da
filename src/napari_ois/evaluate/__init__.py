"""Evaluation: label quality against ground truth (more metrics arrive with the eval issue)."""
