// Pure helpers of the canvas editor (no DOM): the view (zoom and pan) as numbers, and the clipboard
// (copy, paste, duplicate) as flow@1 edits. editor.js draws; tests/designer/test_editor_canvas.py runs
// these in Node.
//
// The view: a canvas point p is drawn at screen = offset + p * zoom, relative to the canvas element's top
// left (the Drawflow precanvas has transform-origin 0 0).
import {uniqueId} from './adapter.js';

export const ZOOM_MIN = 0.2;
export const ZOOM_MAX = 2;
/** Below this the node text is too small to read: the editor opens at least this large. */
export const READABLE = 0.8;
/** A node's box on the canvas, for fitting and the minimap (the CSS width; the height of a typical node). */
export const NODE_W = 200;
export const NODE_H = 76;

const clamp = (value, low, high) => Math.min(high, Math.max(low, value));

/** The view after zooming by `factor` with the screen point (sx, sy) kept under the cursor. */
export function zoomAt(view, factor, sx, sy) {
  const zoom = clamp(view.zoom * factor, ZOOM_MIN, ZOOM_MAX);
  const px = (sx - view.x) / view.zoom;
  const py = (sy - view.y) / view.zoom;
  return {zoom, x: sx - px * zoom, y: sy - py * zoom};
}

/** The bounding box {x, y, w, h} of the nodes on the canvas; null without nodes. */
export function bounds(nodes, size = () => [NODE_W, NODE_H]) {
  if (!nodes.length) return null;
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const node of nodes) {
    const [w, h] = size(node);
    const x = Number(node.ui?.x ?? 0);
    const y = Number(node.ui?.y ?? 0);
    [x0, y0, x1, y1] = [Math.min(x0, x), Math.min(y0, y), Math.max(x1, x + w), Math.max(y1, y + h)];
  }
  return {x: x0, y: y0, w: x1 - x0, h: y1 - y0};
}

/**
 * The view that shows `box` in a canvas of `width` × `height`: the whole box when it fits at `minZoom`
 * or more (at most 100 %), centred; otherwise `minZoom`, with the box's start (left, and top when it is
 * too tall) in view — the flow reads from its trigger and the minimap shows the rest.
 */
export function fitView(box, width, height, minZoom = READABLE, margin = 32) {
  if (!box) return {zoom: 1, x: margin, y: margin};
  const fit = Math.min(1, (width - 2 * margin) / Math.max(box.w, 1), (height - 2 * margin) / Math.max(box.h, 1));
  const zoom = clamp(Math.max(fit, minZoom), ZOOM_MIN, ZOOM_MAX);
  const sw = box.w * zoom;
  const sh = box.h * zoom;
  const left = sw <= width - 2 * margin ? (width - sw) / 2 : margin;
  const top = sh <= height - 2 * margin ? (height - sh) / 2 : margin;
  return {zoom, x: left - box.x * zoom, y: top - box.y * zoom};
}

/** The part of the canvas a view shows, in canvas coordinates. */
export function viewport(view, width, height) {
  return {x: -view.x / view.zoom, y: -view.y / view.zoom, w: width / view.zoom, h: height / view.zoom};
}

/** The view that puts canvas point (px, py) in the middle of the screen, keeping the zoom. */
export function centreOn(view, px, py, width, height) {
  return {zoom: view.zoom, x: width / 2 - px * view.zoom, y: height / 2 - py * view.zoom};
}

/** What Ctrl+C keeps: the selected nodes (deep copies), the edges between them and their ports. */
export function copyOf(doc, ids, portsOf) {
  const chosen = new Set(ids);
  const nodes = doc.nodes.filter((n) => chosen.has(n.id)).map((n) => JSON.parse(JSON.stringify(n)));
  const edges = doc.edges.filter((e) => chosen.has(e.from) && chosen.has(e.to)).map((e) => ({...e}));
  const ports = Object.fromEntries(nodes.map((n) => [n.id, portsOf(n)]));
  return {schema: 'tideflow/clipboard@1', kind: doc.kind, nodes, edges, ports};
}

/**
 * Paste `clip` into `doc`: every node gets a fresh id (send_message → send_message_2 …), moves by
 * (dx, dy), and the copied edges follow their nodes. Node types this flow cannot hold (`allowed(type)`
 * false: unknown, or not for this flow's kind) are left out and listed in `skipped`.
 * Returns {doc, ids (the new nodes, in order), ports (new id → ports), skipped}.
 */
export function pasteInto(doc, clip, dx, dy, allowed) {
  const taken = doc.nodes.map((n) => n.id);
  const idMap = new Map();
  const nodes = [];
  const skipped = [];
  for (const node of clip.nodes || []) {
    if (!allowed(node.type)) { skipped.push(node.type); continue; }
    const id = uniqueId(node.type, taken);
    taken.push(id);
    idMap.set(node.id, id);
    const x = Math.round(Number(node.ui?.x ?? 0) + dx);
    const y = Math.round(Number(node.ui?.y ?? 0) + dy);
    nodes.push({...JSON.parse(JSON.stringify(node)), id, ui: {...(node.ui || {}), x, y}});
  }
  const edges = (clip.edges || []).filter((e) => idMap.has(e.from) && idMap.has(e.to))
    .map((e) => ({...e, from: idMap.get(e.from), to: idMap.get(e.to)}));
  const ports = Object.fromEntries([...idMap].map(([old, id]) => [id, (clip.ports || {})[old]]).filter(([, p]) => p));
  return {doc: {...doc, nodes: [...doc.nodes, ...nodes], edges: [...doc.edges, ...edges]},
    ids: nodes.map((n) => n.id), ports, skipped};
}

/** The nodes whose boxes meet the rectangle {x, y, w, h} (canvas coordinates): a rubber-band selection. */
export function nodesIn(nodes, rect, size = () => [NODE_W, NODE_H]) {
  return nodes.filter((node) => {
    const [w, h] = size(node);
    const x = Number(node.ui?.x ?? 0);
    const y = Number(node.ui?.y ?? 0);
    return x < rect.x + rect.w && x + w > rect.x && y < rect.y + rect.h && y + h > rect.y;
  }).map((n) => n.id);
}
