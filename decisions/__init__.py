"""Decisions: DMN decision tables, decision requirement graphs, FEEL, DMN XML import/export, analysis.

Pure functions with no I/O and no imports from the rest of Tideflow: journeys
(``logic.decision_table``), ticket routing, broadcasts and settlement all call them.

- :mod:`decisions.feel` — FEEL at DMN compliance level 3, sandboxed and cost-bounded
- :mod:`decisions.table` — the table model, hit policies and :func:`~decisions.table.evaluate`
- :mod:`decisions.drg` — decision requirement graphs: checks, scopes, evaluation in dependency order
- :mod:`decisions.analysis` — static checks: overlapping rules, gaps, unreachable rules
- :mod:`decisions.dmn_xml` — import of DMN 1.1–1.5 XML, export of DMN 1.3 (Camunda Modeler files)
- :mod:`decisions.decide` — ``tideflow decide``: evaluate a decision of a DMN file or a table
"""
