"""Pulumi entry point: read the stack config, build the components, export.

The components land with the Pulumi issue (infra/); until then this program
makes nothing.
"""
