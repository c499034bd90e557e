"""Scenarios: the v1 model, the safe loader, the catalog."""

SCENARIO_FILE = "scenario.yaml"  # the file that makes a folder a scenario
