"""Degenerate-output stops on the pause replay's model keystrokes: tokens saved, suggestions typed later lost.

    .venv/bin/python benchmarks/degenerate_stops.py   (after typing_replay.py --pause; reads its run2 JSON)

Each model keystroke's prompt is rebuilt as the pipeline builds it and generated twice, whole (no budget,
no early delivery): with the product's stops, and with only the line / block stops. Prints and writes JSON.
"""
import json, sys
import attrs
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import typing_replay as tr
from codeassist_lsp.config import Settings
from codeassist_lsp.engine.postprocess import block_stop, line_stop
from codeassist_lsp.service import CompletionService
s = Settings(); s.cache.enabled = False
svc = CompletionService(s); svc.wait_until_loaded()
d = json.load(open(Path(__file__).resolve().parent / "results" / "typing_replay_pause_run2.json"))["pause"]
files = {p.name: (p, lang, line) for p, lang, line in tr.PAUSE_FILES}
saved = lost = gained = n = with_stops_tokens = without_tokens = 0
for r in d["records"]:
    if (r.get("server") or {}).get("source") != "model":
        continue
    p, lang, line = files[r["file"]]
    text, offset, typed, source = tr._typing_script(p, line, 150)
    i = r["index"]; text = text[:offset] + typed[:i + 1] + text[offset:]; cur = offset + i + 1
    real = source[offset + i + 1: offset + i + 401]
    prep = svc.prepare(text, cur, path=str(p), language_id=lang, refresh_context=True)
    if prep.request is None or prep.request.max_tokens <= 0:
        continue
    base = attrs.evolve(prep.request, budget_ms=0.0, guess_below=0.0, not_before=0.0)
    plain_stop = (block_stop(prep.gate.indent, s.completion.max_block_lines) if prep.gate.mode == "block" else line_stop)
    out = {}
    for name, req in (("with", base), ("without", attrs.evolve(base, stop_check=plain_stop))):
        res = svc.worker.submit(req).final.result()
        sug = svc._shaped_and_verified(prep, res).text
        out[name] = (res.generated_tokens, tr.went_on_to_type(sug, real))
    n += 1
    with_stops_tokens += out["with"][0]; without_tokens += out["without"][0]
    lost += out["without"][1] and not out["with"][1]; gained += out["with"][1] and not out["without"][1]
report = {"model_keystrokes": n, "tokens_with_stops": with_stops_tokens, "tokens_without": without_tokens,
          "typed_later_lost": lost, "typed_later_gained": gained}
print(json.dumps(report))
(Path(__file__).resolve().parent / "results" / "degenerate_stops.json").write_text(json.dumps(report, indent=2) + "\n")
svc.close()
