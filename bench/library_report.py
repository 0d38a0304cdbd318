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
    text += _method_row("index + lazy segments", needles["summary"]["index"])
    misses = [c for c in needles["cases"] if not c["index"]["hit3"] or not c["index"]["correct"]]
    if misses:
        text += "\nIndex misses (hit@3 or accuracy):\n\n| needle | question | evidence | answer |\n|---|---|---|---|\n"
        for case in misses:
            row = case["index"]
            text += (f"| {case['id']} | {case['question']} | {', '.join(row['evidence'])} | "
                     f"{row['answer'].replace('|', '/')[:90]} |\n")
    samples = probe["samples"]
    text += (f"\nSecond question on {probe['document']} in a new process ({samples[0]['tokens']:,} tokens, "
             f"{samples[0]['segments']} segments), first token from the question (model loaded, document opened): "
             f"{_spread(probe['first_token_s'])}; restore "
             f"{'/'.join(str(r['restore_s']) for r in samples)} s, ranking {'/'.join(str(r['score_s']) for r in samples)}"
             f" s, context load {'/'.join(str(r['context_load_s']) for r in samples)} s, segments loaded "
             f"{'/'.join(str(r['segments_loaded']) for r in samples)}; evidence pages {samples[0]['evidence_pages']}.\n")
    text += (f"\nIndex: {index['index_bytes']:,} bytes for {index['tokens']:,} tokens ({index['passages']:,} passages): "
             f"{index['index_bytes_per_token']} bytes/token, {100 * index['index_share_of_fp16_state']:.2f}% of the fp16 "
             f"state ({index['fp16_state_bytes_per_token']:,} bytes/token). Stored segments: "
             f"{index['stored_segments']} ({index['stored_segment_bytes'] / 2**30:.2f} GiB).\n")
    text += (f"\nAdding one document ({added['tokens']:,} tokens, {added['pages']} pages, {added['segments']} segments, "
             f"nothing cached): {added['seconds']} s ({added['tokens_per_s']} tokens/s, {added['seconds_per_segment']} s "
             f"per segment), peak memory +{added['peak_extra_mb']} MB.\n")
    probes = result["growth"][0]["index"].get("n", 0) // 2
    text += (f"\nAs the library grows (the same needles, those in the smallest scope; index: {probes} needle(s) x 2 "
             f"rounds):\n\n| library tokens | documents | first token | hit@3 |\n|---|---|---|---|\n")
    for row in result["growth"]:
        text += (f"| {row['tokens']:,} | {row['documents']} | {_spread(row['index'].get('first_token_s'))} | "
                 f"{row['index'].get('hit3', '-')} |\n")
    return text
