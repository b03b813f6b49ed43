"""What tests share besides fixtures: waiting on a condition, servers, builders.

Fixtures live in the conftest modules; anything a test imports lives here (no test
imports from a conftest).
"""
