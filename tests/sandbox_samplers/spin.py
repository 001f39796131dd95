"""Hostile: spins on the CPU forever."""

while True:
    pass
