"""Ticket domain maths: DMN decision tables for routing and business-hours SLA calendars.

Pure functions with no I/O (DESIGN §2): the ``ticket.*`` activities are thin shells around them.

- :mod:`activities.tickets.feel` — the FEEL subset used in decision-table cells (unary tests, literals)
- :mod:`activities.tickets.decision_table` — the table model, hit policies and :func:`evaluate`
- :mod:`activities.tickets.decision_analysis` — static checks: overlapping rules, gaps, unreachable rules
- :mod:`activities.tickets.dmn_xml` — import/export of DMN 1.1–1.5 XML (Camunda Modeler files)
- :mod:`activities.tickets.calendar` — business calendars, SLA deadlines, pauses
"""
