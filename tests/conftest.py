"""The suite's fixtures come from the shipped testing kit (cartridge.testing.fixtures)."""

pytest_plugins = ["cartridge.testing.fixtures"]
