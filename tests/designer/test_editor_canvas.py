"""designer/static/editor/canvas.js, the canvas's view maths and clipboard, run by Node.js: zooming keeps the
point under the cursor, a flow opens whole when it fits readably and from its start when it does not, paste
gives fresh ids and carries the copied edges, a flow of another kind refuses what it cannot hold."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CANVAS = ROOT / "designer" / "static" / "editor" / "canvas.js"
WELCOME = json.loads((ROOT / "flows" / "welcome-new-contact.json").read_text(encoding="utf-8"))
NODE = shutil.which("node")

SCRIPT = """
import * as c from %(canvas)s;
const doc = %(doc)s;
const out = {};
const v = {zoom: 1, x: 10, y: 20};
out.zoomed = c.zoomAt(v, 2, 300, 200);
out.clamped = c.zoomAt(v, 100, 0, 0).zoom;
out.box = c.bounds(doc.nodes);
out.wide = c.fitView(out.box, 760, 580);          // the welcome flow in the editor's canvas: too wide
out.small = c.fitView({x: 100, y: 100, w: 400, h: 200}, 760, 580);
out.all = c.fitView(out.box, 760, 580, 0);         // "fit": everything, however small
out.port = c.viewport({zoom: 0.5, x: -100, y: 50}, 800, 600);
out.centred = c.centreOn({zoom: 2, x: 0, y: 0}, 100, 50, 800, 600);
const clip = c.copyOf(doc, ['hello', 'wait1', 'converted'], (n) => n.id === 'hello' ? ['out', 'skipped'] : ['out']);
out.clip = clip;
out.pasted = c.pasteInto(doc, clip, 40, 40, () => true);
out.again = c.pasteInto(out.pasted.doc, clip, 80, 80, () => true).ids;
out.refused = c.pasteInto({...doc, kind: 'ticket'}, clip, 0, 0, (type) => type !== 'action.send_message');
out.band = c.nodesIn(doc.nodes, {x: 300, y: 200, w: 500, h: 100});
console.log(JSON.stringify(out));
"""


def _run() -> dict[str, Any]:
    assert NODE is not None, "Node.js is needed for this test: .ci/run installs it (apt-get install nodejs)"
    script = SCRIPT % {"canvas": json.dumps(CANVAS.as_uri()), "doc": json.dumps(WELCOME, ensure_ascii=False)}
    done = subprocess.run([NODE, "--input-type=module", "-e", script], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_view_keeps_the_point_under_the_cursor_and_opens_readable() -> None:
    out = _run()
    z = out["zoomed"]
    # the canvas point under (300, 200) before: ((300-10)/1, (200-20)/1) = (290, 180); after: the same screen point
    assert z["zoom"] == 2 and z["x"] + 290 * 2 == 300 and z["y"] + 180 * 2 == 200
    assert out["clamped"] == 2  # at most 200 %
    wide, box = out["wide"], out["box"]
    assert wide["zoom"] == 0.8  # never below readable …
    assert round(wide["x"] + box["x"] * 0.8) == 32  # … showing the flow from its start, at the margin
    small = out["small"]
    assert small["zoom"] == 1 and small["x"] + 100 == (760 - 400) / 2  # a small flow: 100 %, centred
    assert out["all"]["zoom"] < 0.4  # "fit" shows it all
    assert out["port"] == {"x": 200, "y": -100, "w": 1600, "h": 1200}
    assert out["centred"] == {"zoom": 2, "x": 200, "y": 200}


def test_copy_and_paste_give_fresh_ids_and_carry_the_edges_between_the_copied_nodes() -> None:
    out = _run()
    clip = out["clip"]
    assert [n["id"] for n in clip["nodes"]] == ["hello", "wait1", "converted"]
    # only the edges inside the selection (hello → wait1 twice: out and skipped)
    assert clip["edges"] == [{"from": "hello", "to": "wait1"}, {"from": "hello", "port": "skipped", "to": "wait1"}]
    assert clip["ports"]["hello"] == ["out", "skipped"]
    pasted = out["pasted"]
    assert pasted["ids"] == ["send_message", "delay", "goal"]
    new = {n["id"]: n for n in pasted["doc"]["nodes"]}
    hello = next(n for n in WELCOME["nodes"] if n["id"] == "hello")
    assert new["send_message"]["config"] == hello["config"]
    assert new["send_message"]["ui"] == {"x": hello["ui"]["x"] + 40, "y": hello["ui"]["y"] + 40}
    assert {"from": "send_message", "to": "delay"} in pasted["doc"]["edges"]
    assert len(pasted["doc"]["edges"]) == len(WELCOME["edges"]) + 2
    assert pasted["ports"] == {"send_message": ["out", "skipped"], "delay": ["out"], "goal": ["out"]}
    assert out["again"] == ["send_message_2", "delay_2", "goal_2"]
    refused = out["refused"]
    assert refused["ids"] == ["delay", "goal"] and refused["skipped"] == ["action.send_message"]
    assert refused["doc"]["edges"] == WELCOME["edges"]  # the edge lost its sender: not pasted


def test_a_box_selects_the_nodes_it_touches() -> None:
    out = _run()
    touching = [n["id"] for n in WELCOME["nodes"]
                if n["ui"]["x"] < 800 and n["ui"]["x"] + 200 > 300 and n["ui"]["y"] < 300 and n["ui"]["y"] + 76 > 200]
    assert out["band"] == touching and touching  # the nodes the box meets, in document order
