"""Operator commands (retention cleanup)."""
