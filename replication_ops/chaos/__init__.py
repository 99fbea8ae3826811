"""Fault injection for the local two-partition environment (`make chaos`)."""
