"""Hostile: allocates (and touches) 16 MB blocks until something stops it."""

blocks = []
while True:
    blocks.append(b"\x01" * (16 * 2**20))
    print(f"holding {16 * len(blocks)} MB", flush=True)
