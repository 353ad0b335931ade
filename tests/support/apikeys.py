"""API keys of the test servers that require them (two clients, by name)."""

KEY_A, KEY_B = "alice-" + "a" * 20, "bob-" + "b" * 20
