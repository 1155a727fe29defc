"""The messaging rules: the workspace's frequency cap and default quiet hours (admins), and how they apply to
each flow and each send node."""
