"""The program offline, for the tests: ``devstack.plugin_kit`` (what plugin packages use too)."""

from devstack.plugin_kit import (API_KEY, BASE_CONFIG, MAIN, OPERATIONS, PROJECT, PUBLIC_KEY, STACK,  # noqa: F401
                                 Program, config_values, run_program)
