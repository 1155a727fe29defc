"""The fault suite (``make faults``): the embedded stack under load, broken on purpose, then the books checked."""
