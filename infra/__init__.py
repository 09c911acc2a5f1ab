"""Pulumi components. Imports pulumi; never shipped to Lambda."""
