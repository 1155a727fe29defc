"""The quarantine area: what kept failing (events, ticket starts, connector pushes), for operators."""
