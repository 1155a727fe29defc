"""Ticket domain maths: assignment, reviews and business-hours SLA calendars.

Decision tables used for routing live in :mod:`decisions` (journeys and settlement use them too).

Pure functions with no I/O (DESIGN §2): the ``ticket.*`` activities are thin shells around them.

- :mod:`activities.tickets.calendar` — business calendars, SLA deadlines, pauses
"""
