"""The engine's name for :mod:`wording`, where :class:`Msg` and its helpers live (the bottom layer, so that
``decisions`` and ``connectors``, which may not import the engine, raise ``Msg`` too). This module only
re-exports them for the engine, activities and designer code that imports ``engine.text``; it holds no copy.
"""

from wording import CAUGHT, CAUGHT_SILENT, N_, NC_, NO_FIX, Msg, MsgError, caught, joined, message_of, verbatim

__all__ = ["CAUGHT", "CAUGHT_SILENT", "NC_", "NO_FIX", "N_", "Msg", "MsgError", "caught", "joined", "message_of",
           "verbatim"]
