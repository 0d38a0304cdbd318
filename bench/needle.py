"""Needle in a haystack with the bundled model: dense vs DGA (gamma x m) vs eviction and recent-window
baselines at DGA's key budget, plus DGA design variants; answer accuracy and evidence hit rate (top 3)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from bench import baselines  # noqa: F401 - registers the evict and recent strategies
from bench.common import Config, contains_answer, haystack_pdf, haystack_sentences, make_engine, rng

PLACES = ["red archive", "north tower", "glass library", "copper vault", "blue workshop", "east cellar",
          "silver studio", "green office", "stone chapel", "west garage", "amber lab", "iron gate room",
          "quiet lounge", "old mill", "yellow depot", "marble hall"]


def needle_case(index: int) -> tuple[str, str, str]:
    r = rng(1000 + index)
    place = PLACES[index % len(PLACES)] if index < len(PLACES) else f"{r.choice(PLACES)} {index}"
    code = f"{r.randint(1000, 9999)}-{r.randint(10, 99)}" if index % 2 else str(r.randint(10000, 99999))
    return (f"The access code for the {place} is {code}.", f"What is the access code for the {place}?", code)


def build_case(engine, sentences, folder: Path, length: int, depth: float, index: int):
    """A PDF of about ``length`` document tokens with the needle at ``depth`` (0-1) of the text."""
    needle, question, code = needle_case(index)
    r = rng(index * 7 + length)
    start = r.randrange(0, len(sentences) - 700)
    path = haystack_pdf(engine, sentences, folder / f"needle-{length}-{index}.pdf", length, start, needle, depth)
    return path, needle, question, code


def evidence_hit(answer, needle: str, doc) -> bool:
    """The needle sentence's words overlap one of the top-3 evidence passages."""
    needle_words = _needle_word_indices(doc, needle)
    return any(any(item.words[0] <= i < item.words[1] for i in needle_words) for item in answer.evidence[:3])


def _needle_word_indices(doc, needle: str) -> set[int]:
    target = needle.split()
    words = [w.text for w in doc.ingested.words]
    for start in range(len(words) - len(target) + 1):
        if words[start] == target[0] and words[start:start + len(target)] == target:
            return set(range(start, start + len(target)))
    return set()


def configs(quick: bool) -> list[Config]:
    base = [Config("dense", mode="dense"), Config("dga g0.1 m16")]
    references = [Config("evict (SnapKV-like)", mode="evict"), Config("recent (StreamingLLM-like)", mode="recent")]
    if quick:
        return base + references + [Config("dga r0 (select once)", options={"reselect_every": 0})]
    grid = [Config(f"dga g{g} m{m}", gamma=g, group_size=m) for g in (0.05, 0.1, 0.2) for m in (8, 16, 32)
            if (g, m) != (0.1, 16)]
    design = [Config("dga r0 (select once)", options={"reselect_every": 0}),
              Config("dga follow=0", options={"follow": 0}),
              Config("dga r8", options={"reselect_every": 8}),
              Config("dga weight=mean", options={"weighting": "mean"}),
              Config("dga bias=log_m", options={"bias": "log_m"}),
              Config("dga bias=none", options={"bias": "none"}),
              Config("dga smoothing=1", options={"smoothing": 1})]
    return base + grid + references + design


def run(quick: bool, out_dir: Path, lengths: list[int] | None = None) -> dict:
    """Every config on every case, the order rotated from case to case; ``lengths`` (tokens) overrides the
    defaults (bench/gpu.py asks longer documents of a real model)."""
    engine = make_engine(answer={"max_new_tokens": 24})
    sentences = haystack_sentences()
    lengths = lengths or ([2048, 4096] if quick else [1024, 2048, 4096, 7168])
    cases = 6 if quick else 30
    chosen = configs(quick)
    names = [config.name for config in chosen]
    folder = out_dir / "needle-pdfs"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for length in lengths:
        for index in range(cases):
            depth = index / max(1, cases - 1)
            path, needle, question, code = build_case(engine, sentences, folder, length, depth, index)
            doc = engine.open_document(path)
            started = time.perf_counter()
            turn = len(rows) // len(chosen) % len(chosen)
            for config in chosen[turn:] + chosen[:turn]:  # interleaved: each config comes first in turn
                config.apply(engine)
                answer = engine.ask(doc, question)
                rows.append({"length": length, "case": index, "depth": round(depth, 2), "config": config.name,
                             "tokens": doc.total_tokens, "correct": contains_answer(answer.generated, [code]),
                             "evidence_hit": evidence_hit(answer, needle, doc), "answer": answer.answer[:120],
                             "attended_fraction": answer.attention["attended_fraction"]})
            engine.forget(doc)
            print(f"  length {length} case {index}: {time.perf_counter() - started:.0f}s "
                  + " ".join(f"{r['config'].split()[0]}={'Y' if r['correct'] else '-'}"
                             for r in sorted(rows[-len(chosen):], key=lambda r: names.index(r["config"]))),
                  flush=True)
    summary = summarize(rows, lengths, chosen)
    plot(summary, lengths, out_dir / "needle.png")
    (out_dir / "needle-cases.json").write_text(json.dumps(rows, indent=1))
    return {"lengths": lengths, "cases_per_length": cases, "summary": summary, "markdown": markdown(summary, lengths)}


def summarize(rows, lengths, chosen) -> dict:
    summary = {}
    for config in chosen:
        entry = {}
        for length in lengths:
            mine = [r for r in rows if r["config"] == config.name and r["length"] == length]
            dense = [r for r in rows if r["config"] == "dense" and r["length"] == length]
            accuracy = sum(r["correct"] for r in mine) / len(mine)
            dense_accuracy = sum(r["correct"] for r in dense) / len(dense)
            entry[str(length)] = {"accuracy": round(accuracy, 3),
                                  "vs_dense": round(accuracy / dense_accuracy, 3) if dense_accuracy else None,
                                  "evidence_hit": round(sum(r["evidence_hit"] for r in mine) / len(mine), 3),
                                  "attended_fraction": round(sum(r["attended_fraction"] for r in mine) / len(mine),
                                                             3)}
        summary[config.name] = entry
    return summary


def markdown(summary, lengths) -> str:
    head = "| config | " + " | ".join(f"{n // 1024}K acc (vs dense) / evidence@3" for n in lengths) + \
           " | attended |\n"
    head += "|---" * (len(lengths) + 2) + "|\n"
    for name, entry in summary.items():
        cells = [f"{e['accuracy']:.2f} ({e['vs_dense'] if e['vs_dense'] is not None else '-'}) / "
                 f"{e['evidence_hit']:.2f}" for e in (entry[str(n)] for n in lengths)]
        fraction = entry[str(lengths[-1])]["attended_fraction"]
        head += f"| {name} | " + " | ".join(cells) + f" | {fraction:.3f} |\n"
    return head


def plot(summary, lengths, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4))
    for name in summary:
        if name.startswith(("dense", "dga g0.1 m16", "evict", "recent")):
            axis.plot([n / 1024 for n in lengths], [summary[name][str(n)]["accuracy"] for n in lengths],
                      marker="o", label=name)
    axis.set_xlabel("document length (K tokens)")
    axis.set_ylabel("needle accuracy")
    axis.set_ylim(0, 1.05)
    axis.set_title("Needle in a haystack, SmolLM2-135M-Instruct")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
