"""The library benchmark's tables (bench/library.py), as Markdown."""
from __future__ import annotations


def _spread(value: dict | None, unit: str = " s") -> str:
    if not value:
        return "-"
    return f"{value['median']:.2f}{unit} ({value['min']:.2f}-{value['max']:.2f})"


def _method_row(name: str, s: dict) -> str:
    if not s:
        return f"| {name} | - | - | - | - | - |\n"
    return (f"| {name} | {s['n']} | {s['hit1']:.2f} | {s['hit3']:.2f} | {s['accuracy']:.2f} | "
            f"{_spread(s['first_token_s'])} |\n")


def markdown(result: dict) -> str:
    index, needles, probe, added = result["index"], result["needles"], result["new_process"], result["add_one"]
    text = (f"Library: {len(result['library'])} documents, {result['library_tokens']:,} tokens "
            f"({sum(1 for d in result['library'] if d['state'] == 'ready')} ready); load average "
            f"{result['load_average']} at the end.\n\n")
    text += ("Needles across the library (evidence document+page hit@1 / hit@3, accuracy, first token: median "
             "(min-max)):\n\n| method | needles | hit@1 | hit@3 | accuracy | first token |\n|---|---|---|---|---|---|\n")
    text += _method_row("index (all needles)", needles["summary"]["index"])
    same = needles["summary_same_cases"]
    text += _method_row("index (same needles as below)", same["index"])
    text += _method_row("question after every segment (today)", same["attention"])
    misses = [c for c in needles["cases"] if not c["index"]["hit3"] or not c["index"]["correct"]]
    if misses:
        text += "\nIndex misses (hit@3 or accuracy):\n\n| needle | question | evidence | answer |\n|---|---|---|---|\n"
        for case in misses:
            row = case["index"]
            text += (f"| {case['id']} | {case['question']} | {', '.join(row['evidence'])} | "
                     f"{row['answer'].replace('|', '/')[:90]} |\n")
    samples = probe["samples"]
    text += (f"\nSecond question on {probe['document']} in a new process ({samples['index'][0]['tokens']:,} tokens, "
             f"{samples['index'][0]['segments']} segments), ABAB, first token from the question (model loaded, "
             f"document opened):\n\n| method | first token | restore | ranking | context load | segments loaded | "
             f"open document |\n|---|---|---|---|---|---|---|\n")
    for method, name in (("attention", "question after every segment (today)"), ("index", "index + lazy segments")):
        rows = samples[method]
        text += (f"| {name} | {_spread(probe['first_token_s'][method])} | "
                 f"{'/'.join(str(r['restore_s']) for r in rows)} | {'/'.join(str(r['score_s']) for r in rows)} | "
                 f"{'/'.join(str(r['context_load_s']) for r in rows)} | "
                 f"{'/'.join(str(r['segments_loaded']) for r in rows)} | {'/'.join(str(r['open_s']) for r in rows)} |\n")
    text += (f"\nSpeed-up per round (today / index): {_spread(probe['ratio'], 'x')}; evidence pages: today "
             f"{samples['attention'][0]['evidence_pages']}, index {samples['index'][0]['evidence_pages']}.\n")
    text += (f"\nIndex: {index['index_bytes']:,} bytes for {index['tokens']:,} tokens ({index['passages']:,} passages): "
             f"{index['index_bytes_per_token']} bytes/token, {100 * index['index_share_of_fp16_state']:.2f}% of the fp16 "
             f"state ({index['fp16_state_bytes_per_token']:,} bytes/token). Stored segments: "
             f"{index['stored_segments']} ({index['stored_segment_bytes'] / 2**30:.2f} GiB).\n")
    text += (f"\nAdding one document ({added['tokens']:,} tokens, {added['pages']} pages, {added['segments']} segments, "
             f"nothing cached): {added['seconds']} s ({added['tokens_per_s']} tokens/s, {added['seconds_per_segment']} s "
             f"per segment), peak memory +{added['peak_extra_mb']} MB.\n")
    probes = result["growth"][0]["index"].get("n", 0) // 2
    text += (f"\nAs the library grows (the same needles, those in the smallest scope; index: {probes} needle(s) x 2 "
             f"rounds, today: 1 needle):\n\n"
             "| library tokens | documents | index first token | index hit@3 | today first token |\n|---|---|---|---|---|\n")
    for row in result["growth"]:
        text += (f"| {row['tokens']:,} | {row['documents']} | {_spread(row['index'].get('first_token_s'))} | "
                 f"{row['index'].get('hit3', '-')} | {_spread(row['attention'].get('first_token_s'))} |\n")
    return text
