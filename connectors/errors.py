"""Base exceptions shared by every connector's protocol layer.

An inbound endpoint can catch :class:`SignatureVerificationError` to answer "401: not from the
platform" without knowing which platform it is serving, and :class:`ConnectorProtocolError` for
anything else the protocol layer rejects (a malformed envelope, a bad key).

Messages say what is wrong and what to check. They never contain a secret or the signature we
expected: echoing the expected signature back to a caller would turn the endpoint into a signing
oracle for forged bodies.
"""

from __future__ import annotations


class ConnectorProtocolError(Exception):
    """A message or configuration value broke an outside system's protocol."""


class SignatureVerificationError(ConnectorProtocolError):
    """A signature on an inbound message did not verify: treat the message as not from the platform."""
