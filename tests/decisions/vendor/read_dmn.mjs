// Reads a DMN file the way Camunda Modeler does (bpmn-io's dmn-moddle with the camunda extension),
// and prints what it understood as JSON: warnings, decisions, tables (vendored: tests/decisions/vendor).
import { readFileSync } from 'node:fs';
import { DmnModdle } from 'dmn-moddle';

const camunda = JSON.parse(readFileSync(new URL('./node_modules/camunda-dmn-moddle/resources/camunda.json', import.meta.url)));
const moddle = DmnModdle({ camunda });
const xml = readFileSync(process.argv[2], 'utf8');
const { rootElement, warnings } = await moddle.fromXML(xml, 'dmn:Definitions');

const text = (e) => (e && e.text) || '';
const decisions = (rootElement.drgElement || []).filter((e) => e.$type === 'dmn:Decision').map((d) => {
  const table = d.decisionLogic && d.decisionLogic.$type === 'dmn:DecisionTable' ? d.decisionLogic : null;
  return {
    id: d.id, name: d.name,
    requires: (d.informationRequirement || []).map((r) => (r.requiredInput || r.requiredDecision || {}).href),
    table: table && {
      hitPolicy: table.hitPolicy, aggregation: table.aggregation || null,
      inputs: table.input.map((i) => ({ id: i.id, expression: text(i.inputExpression), typeRef: i.inputExpression && i.inputExpression.typeRef, inputVariable: i.inputVariable || null })),
      outputs: table.output.map((o) => ({ id: o.id, name: o.name, typeRef: o.typeRef, default: text(o.defaultOutputEntry) })),
      rules: table.rule.map((r) => ({ id: r.id, inputs: r.inputEntry.map(text), outputs: r.outputEntry.map(text) })),
    },
  };
});
const shapes = (rootElement.dmnDI && rootElement.dmnDI.diagrams || []).flatMap((d) => d.diagramElements.map((e) => e.dmnElementRef && e.dmnElementRef.id));
console.log(JSON.stringify({ warnings: warnings.map((w) => w.message), decisions, shapes }));
