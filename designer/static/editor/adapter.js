// Tideflow flow@1 ⇄ Drawflow's in-memory model.
//
// The flow document (nodes [{id, type, name, config, ui: {x, y}}], edges [{from, port, to}]) is the
// source of truth. Drawflow only draws it: toDrawflow() builds Drawflow's import model from the
// document, fromDrawflow() reads positions and connections back into a copy of the document.
// Drawflow's own export is never saved or sent anywhere.
//
// Drawflow names things by number ("node-3", "output_2"); the adapter keeps the mapping:
//   idOf:  flow node id → Drawflow id ("1", "2", …)
//   tfOf:  Drawflow id → flow node id
//   portLists: flow node id → port names, output_k is portLists[id][k - 1]

/** Port names a node shows: its type's (or config's) ports, plus any port an edge uses that the type
 * does not have, so that a wrong edge stays visible (and deletable) instead of vanishing. */
export function nodePorts(node, edges, portsOf) {
  const ports = [...portsOf(node)];
  for (const edge of edges) {
    const port = edge.port || 'out';
    if (edge.from === node.id && !ports.includes(port)) ports.push(port);
  }
  return ports;
}

/** Drawflow's import model for a flow document. `options`: portsOf(node) → names, hasInput(node) →
 * false for triggers, html(node) → inner HTML, className(node) → CSS classes (no double spaces). */
export function toDrawflow(doc, {portsOf, hasInput, html, className}) {
  const idOf = new Map();
  const tfOf = new Map();
  const portLists = new Map();
  const data = {};
  doc.nodes.forEach((node, i) => {
    const df = String(i + 1);
    idOf.set(node.id, df);
    tfOf.set(df, node.id);
    portLists.set(node.id, nodePorts(node, doc.edges, portsOf));
  });
  for (const node of doc.nodes) {
    const df = idOf.get(node.id);
    const outputs = {};
    portLists.get(node.id).forEach((_port, k) => { outputs[`output_${k + 1}`] = {connections: []}; });
    data[df] = {
      id: Number(df), name: node.type, data: {}, class: className(node), html: html(node), typenode: false,
      inputs: hasInput(node) ? {input_1: {connections: []}} : {}, outputs,
      pos_x: Number(node.ui?.x ?? 0), pos_y: Number(node.ui?.y ?? 0),
    };
  }
  for (const edge of doc.edges) {
    const from = idOf.get(edge.from);
    const to = idOf.get(edge.to);
    if (!from || !to || !data[to].inputs.input_1) continue; // dangling, or into a trigger: not drawable
    const output = `output_${portLists.get(edge.from).indexOf(edge.port || 'out') + 1}`;
    data[from].outputs[output].connections.push({node: to, output: 'input_1'});
    data[to].inputs.input_1.connections.push({node: from, input: output});
  }
  return {model: {drawflow: {Home: {data}}}, idOf, tfOf, portLists};
}

/** A copy of `doc` with node positions and edges as Drawflow has them now. Nodes Drawflow no longer
 * has are dropped; everything else (names, configs, settings) comes from `doc`. Edges keep their
 * order in `doc`; new ones are appended. */
export function fromDrawflow(model, doc, {tfOf, portLists}) {
  const data = model.drawflow.Home.data;
  const position = new Map();
  const found = [];
  for (const [df, item] of Object.entries(data)) {
    const from = tfOf.get(String(df));
    if (from === undefined) continue;
    position.set(from, {x: Math.round(item.pos_x), y: Math.round(item.pos_y)});
    const ports = portLists.get(from) || [];
    for (const [outputClass, output] of Object.entries(item.outputs)) {
      const port = ports[Number(outputClass.replace('output_', '')) - 1];
      for (const connection of output.connections) {
        const to = tfOf.get(String(connection.node));
        if (port !== undefined && to !== undefined) found.push({from, port, to});
      }
    }
  }
  const key = (e) => `${e.from}\u0000${e.port || 'out'}\u0000${e.to}`;
  const kept = new Set(found.map(key));
  const edges = doc.edges.filter((e) => kept.has(key(e)));
  const known = new Set(edges.map(key));
  for (const e of found) {
    if (!known.has(key(e))) {
      edges.push(e.port === 'out' ? {from: e.from, to: e.to} : e);
      known.add(key(e));
    }
  }
  const nodes = doc.nodes.filter((n) => position.has(n.id))
    .map((n) => ({...n, ui: {...(n.ui || {}), ...position.get(n.id)}}));
  return {...doc, nodes, edges};
}

/** A node id from its type that no node uses yet: send_message, then send_message_2, … */
export function uniqueId(type, taken) {
  const used = new Set(taken);
  const base = (type.split('.').pop() || 'node').replace(/[^A-Za-z0-9_-]/g, '_').replace(/^[^A-Za-z0-9]+/, '') || 'node';
  if (!used.has(base)) return base;
  for (let n = 2; ; n += 1) {
    if (!used.has(`${base}_${n}`)) return `${base}_${n}`;
  }
}

/** Edges of node `id` after its ports changed from `before` to `after` (switch cases, split
 * branches): a renamed port (same position, new name) keeps its edge, a removed port loses it. */
export function remapEdges(edges, id, before, after) {
  const out = [];
  for (const edge of edges) {
    const port = edge.port || 'out';
    if (edge.from !== id || after.includes(port)) { out.push(edge); continue; }
    const k = before.indexOf(port);
    if (k >= 0 && k < after.length && !before.includes(after[k])) {
      out.push(after[k] === 'out' ? {from: edge.from, to: edge.to} : {...edge, port: after[k]});
    }
  }
  return out;
}
