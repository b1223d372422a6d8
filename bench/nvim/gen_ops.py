"""Writes JSON-lines ops for N nodes (create, title, body) for `heph import-ops`."""
import json
import random
import sys
import uuid

n = int(sys.argv[1])
rng = random.Random(7)
words = ["garden", "invoice", "meeting", "draft", "review", "travel", "budget", "kitchen",
         "paint", "report", "release", "doctor", "school", "birthday", "groceries", "bicycle"]
base_ms = 1_790_000_000_000
counter = 0
out = sys.stdout
for i in range(n):
    node = f"bench-{i:06d}"
    kind = "note" if i % 3 == 0 else "task"
    actions = [
        {"action": "create", "kind": kind},
        {"action": "set", "field": "title", "value": " ".join(rng.choice(words) for _ in range(4)) + f" {i}"},
        {"action": "set_body", "body": "\n".join(" ".join(rng.choice(words) for _ in range(10)) for _ in range(4)) + "\n", "base": []},
    ]
    if kind == "task":
        actions.append({"action": "set", "field": "status", "value": "todo"})
    for action in actions:
        counter += 1
        op = {"op_id": str(uuid.UUID(int=rng.getrandbits(128))), "hlc": f"{base_ms + i:012x}{counter % 0xffffff:06x}-bench", "node": node}
        op.update(action)
        out.write(json.dumps(op) + "\n")
