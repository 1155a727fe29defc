"""designer/static/editor/adapter.js, the flow@1 ⇄ Drawflow adapter, run by Node.js (skipped without it):
a document survives the round trip, canvas changes come back as flow@1 edits, and nothing of
Drawflow's own model leaks into the document."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

from engine.registry import default_registry

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "designer" / "static" / "editor" / "adapter.js"
WELCOME = json.loads((ROOT / "flows" / "welcome-new-contact.json").read_text(encoding="utf-8"))
NODE = shutil.which("node")

SCRIPT = """
import {toDrawflow, fromDrawflow, uniqueId, remapEdges, nodePorts} from %(adapter)s;
const doc = %(doc)s;
const types = %(types)s;
const options = {
  portsOf: (n) => types[n.type]?.ports ?? [],
  hasInput: (n) => !n.type.startsWith('trigger.'),
  html: (n) => `<b>${n.id}</b>`,
  className: (n) => `tf-cat-${n.type.split('.')[0]}`,
};
const out = {};
const view = toDrawflow(doc, options);
out.model = view.model;
out.roundTrip = fromDrawflow(view.model, doc, view);
// the user moves "hello", deletes "no_order", connects bought.yes to "converted" instead of tag_trial
const data = JSON.parse(JSON.stringify(view.model));
const df = (id) => view.idOf.get(id);
data.drawflow.Home.data[df('hello')].pos_x = 333.4;
delete data.drawflow.Home.data[df('no_order')];
for (const item of Object.values(data.drawflow.Home.data)) {
  for (const output of Object.values(item.outputs)) {
    output.connections = output.connections.filter((c) => c.node !== df('no_order'));
  }
}
const yes = `output_${view.portLists.get('bought').indexOf('yes') + 1}`;
data.drawflow.Home.data[df('bought')].outputs[yes].connections = [{node: df('converted'), output: 'input_1'}];
out.edited = fromDrawflow(data, doc, view);
out.ids = [uniqueId('action.send_message', []), uniqueId('action.send_message', ['send_message']),
           uniqueId('action.send_message', ['send_message', 'send_message_2']), uniqueId('logic.goal', ['goal'])];
out.remapped = remapEdges([{from: 's', port: 'a', to: 'x'}, {from: 's', port: 'b', to: 'y'},
                           {from: 's', port: 'default', to: 'z'}, {from: 'o', port: 'a', to: 'x'}],
                          's', ['a', 'b', 'default'], ['a2', 'default']);
out.extraPort = nodePorts({id: 'c', type: 'logic.condition'}, [{from: 'c', port: 'maybe', to: 'x'}], options.portsOf);
console.log(JSON.stringify(out));
"""


def _run() -> dict[str, Any]:
    assert NODE is not None, "Node.js is needed for this test: .ci/run installs it (apt-get install nodejs)"
    types = {d["type"]: {"ports": d["ports"]} for d in default_registry().describe()}
    script = SCRIPT % {"adapter": json.dumps(ADAPTER.as_uri()), "doc": json.dumps(WELCOME, ensure_ascii=False),
                       "types": json.dumps(types)}
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def _edges(doc: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["from"], e.get("port", "out"), e["to"]) for e in doc["edges"]]


def test_the_adapter_round_trips_a_flow_and_maps_canvas_edits_back_to_flow_at_1() -> None:
    out = _run()
    assert out["roundTrip"] == WELCOME  # nothing lost, nothing added, edge order kept
    data = out["model"]["drawflow"]["Home"]["data"]
    start = next(item for item in data.values() if item["name"] == "trigger.event")
    assert start["inputs"] == {} and list(start["outputs"]) == ["output_1"]  # triggers have no input
    hello = next(item for item in data.values() if item["html"] == "<b>hello</b>")
    assert list(hello["outputs"]) == ["output_1", "output_2"]  # out, skipped
    drawn = sum(len(o["connections"]) for item in data.values() for o in item["outputs"].values())
    assert drawn == len(WELCOME["edges"])

    edited = out["edited"]
    assert set(edited) == set(WELCOME) and "drawflow" not in json.dumps(edited)
    assert [n["id"] for n in edited["nodes"]] == [n["id"] for n in WELCOME["nodes"] if n["id"] != "no_order"]
    assert next(n for n in edited["nodes"] if n["id"] == "hello")["ui"] == {"x": 333, "y": 240}
    assert next(n for n in edited["nodes"] if n["id"] == "hello")["config"] == WELCOME["nodes"][1]["config"]
    edges = _edges(edited)
    assert ("bought", "yes", "converted") in edges and ("bought", "yes", "tag_trial") not in edges
    assert not any("no_order" in (a, b) for a, _p, b in edges)
    assert {"from": "bought", "port": "yes", "to": "converted"} in edited["edges"]


def test_ids_ports_and_renamed_ports() -> None:
    out = _run()
    assert out["ids"] == ["send_message", "send_message_2", "send_message_3", "goal_2"]
    assert out["remapped"] == [{"from": "s", "port": "a2", "to": "x"}, {"from": "s", "port": "default", "to": "z"},
                               {"from": "o", "port": "a", "to": "x"}]
    assert out["extraPort"] == ["yes", "no", "maybe"]  # an edge from an unknown port stays visible
