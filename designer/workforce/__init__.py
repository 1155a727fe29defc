"""The workforce area: staff handover, customer groups and mass sends, the conversation archive, compliance."""
