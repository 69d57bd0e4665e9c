"""Evaluation harness that tells a team whether fine-tuning an LLM is worth it."""

__version__ = "0.1.0"
