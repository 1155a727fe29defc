"""The loyalty area: the points program, members' balances, and the API shops and mini-programs call."""
