"""Decisions: DMN decision tables, their FEEL cells, DMN XML import/export and static analysis.

Pure functions with no I/O and no imports from the rest of Tideflow: journeys
(``logic.decision_table``), ticket routing, broadcasts and settlement all call them.

- :mod:`decisions.feel` — the FEEL used in decision-table cells (unary tests, literals)
- :mod:`decisions.table` — the table model, hit policies and :func:`~decisions.table.evaluate`
- :mod:`decisions.analysis` — static checks: overlapping rules, gaps, unreachable rules
- :mod:`decisions.dmn_xml` — import/export of DMN 1.1–1.5 XML (Camunda Modeler files)
- :mod:`decisions.decide` — ``tideflow decide``: evaluate a DMN file or table on an input
"""
