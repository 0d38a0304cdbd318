"""Calibrating the verdict: every candidate signal on the rows of bench/verdict_rows.py, alone and combined.

    python -m bench.verdict_fit signals   # the signals of every row (the model's checks run here): verdict-signals.json
    python -m bench.verdict_fit fit       # each signal alone, the logistic combinations, and the chosen constants

A signal alone is judged by the best threshold that keeps at least 90% of right answers supported; a combination
is a logistic model fitted on the development sets (bench/verdict_rows.py DEV_SETS) with a small L2 penalty, its
threshold the highest that keeps at least 90% of their right answers supported; it is then reported per set,
the held-out sets included, and with leave-one-set-out fits (each development set scored by a model fitted
without it). The constants the engine uses (engine/answer/verdict.py) are printed at the end.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import torch

from bench import answers, needles, verdict_rows

SIGNALS = verdict_rows.ROWS.with_name("verdict-signals.json")
RIGHT_SUPPORTED = 0.9
COMBINATIONS = {
    "words + agreement": ("words", "agreement"),
    "words + checker": ("words", "checker"),
    "words + contrast": ("words", "contrast"),
    "checker + contrast + agreement": ("checker", "contrast", "agreement"),
    "words + contrast + agreement": ("words", "contrast", "agreement"),
    "all four": ("words", "checker", "contrast", "agreement"),
    "anchor + words": ("anchor", "words"),
    "anchor + agreement": ("anchor", "agreement"),
    "anchor + words + agreement": ("anchor", "words", "agreement"),
    "anchor + words + agreement + contrast": ("anchor", "words", "agreement", "contrast"),
    "all five": ("words", "agreement", "anchor", "checker", "contrast"),
    "anchor + words + agreement + contrast + invented": ("anchor", "words", "agreement", "contrast", "invented"),
    "anchor + words + agreement + contrast + top": ("anchor", "words", "agreement", "contrast", "top"),
    "anchor + words + agreement + contrast + invented + top": ("anchor", "words", "agreement", "contrast",
                                                               "invented", "top"),
    "anchor + words + contrast + invented + top": ("anchor", "words", "contrast", "invented", "top"),
    "anchor + agreement + invented + top": ("anchor", "agreement", "invented", "top"),
    "all seven": ("words", "agreement", "anchor", "checker", "contrast", "invented", "top"),
}


def row_signals(engine, documents: dict, row: dict, layout: dict) -> dict:
    """Every candidate signal of one row, computed as the engine computes them (engine/answer/verdict.py)."""
    from engine.answer import instructions, verdict
    from engine.answer.checks import ModelChecks
    from engine.model.prompt import question_ids

    doc = documents[row["set"], row["id"]] if (row["set"], row["id"]) in documents else documents[row["set"]]
    weights = engine.rank(doc, row["question"]).weights
    q_ids = question_ids(engine.loaded.tokenizer, doc.layout, row["question"])
    checks = ModelChecks(engine.loaded, layout["head_ids"], q_ids)
    claim = verdict.Claim(row["question"], cleaned(row), row["passages"], weights, row["ids"], row["logprobs"])
    from engine.answer import support

    found = verdict.signals(claim, checks)
    if claim.answer:
        cited = claim.passages[verdict.word_check(claim).cited[0]] if claim.passages else ""
        found["checker"] = round(Checker(checks).ask(instructions.without_instructions(cited), claim.question,
                                                     claim.answer), 4)
    before = cleaned(row, echo=False)  # the engine before issue 22 did not remove an echo
    old = support.check(before, claim.question, claim.passages, weights).supported if before else False
    return {**found, **(variants(checks, claim) if claim.answer else {}), "old_check": float(old),
            "weights": {k: round(v, 4) for k, v in weights.items()}}


class Checker:
    """The model as a checker (measured; not in the product, where it added nothing): P("yes") against "no" when
    asked whether a passage states the answer, one forward pass over about 100-200 tokens."""

    QUESTION = "Does this passage state that the answer to the question is correct? Answer yes or no."
    PASSAGE_CHARS = 1200

    def __init__(self, checks) -> None:
        self.checks, self.tokenizer = checks, checks.tokenizer

    def ask(self, passage: str, question: str, answer: str) -> float:
        return self.yes(f"Passage: {' '.join(passage.split())[:self.PASSAGE_CHARS]}\n\nQuestion: {question.strip()}\n"
                        f"Answer: {' '.join(answer.split())}\n\n{self.QUESTION}")

    def yes(self, prompt: str) -> float:
        messages = [{"role": "user", "content": prompt}]
        if getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        else:
            text = f"{prompt}\n\nAnswer:"
        both = torch.log_softmax(self.checks.logits(self.tokenizer(text, add_special_tokens=False)["input_ids"], 1)[0],
                                 -1)
        first = lambda word: self.tokenizer(word, add_special_tokens=False)["input_ids"][0]  # noqa: E731
        yes = sorted({first(w) for w in ("yes", "Yes", " yes", " Yes", "YES")})
        no = sorted({first(w) for w in ("no", "No", " no", " No", "NO")})
        return float(torch.sigmoid(torch.logsumexp(both[yes], 0) - torch.logsumexp(both[no], 0)))


def features(rows: list[dict], names: tuple[str, ...]) -> np.ndarray:
    """The engine's features (engine/answer/verdict.py), with the checker's probabilities as log-odds."""
    from engine.answer import verdict

    def logit(value: float) -> float:
        value = min(max(value, 1e-4), 1 - 1e-4)
        return float(np.log(value / (1 - value)))

    return verdict.features([{k: logit(v) if k.startswith("checker") else v for k, v in r.items()} for r in rows],
                            names)


def variants(checks, claim) -> dict:
    """Other forms of the model's signals, measured beside the ones the engine uses."""
    without = np.array(checks.without_context(claim.ids))
    with_passages = np.array(claim.logprobs[:len(without)])
    gain = with_passages - without
    statement = claim.answer.strip().rstrip(".")
    statement = statement[:1].lower() + statement[1:]
    prompt = (f"Passage: {' '.join(claim.passages[0].split())[:1200]}\n\nDoes this passage state that "
              f"{statement}? Answer yes or no.")
    return {"checker_state": Checker(checks).yes(prompt),
            "contrast_sum": float(gain.sum()), "contrast_head": float(gain[:12].mean()),
            "contrast_positive": float((gain > 0).mean()), "confidence": float(with_passages.mean()),
            "confidence_min": float(with_passages.min()), "prior": float(without.mean())}


def cleaned(row: dict, echo: bool = True) -> str:
    """The model's answer as the engine shows it now (an echo of the question removed), or before (``echo``
    False: kept)."""
    from engine.answer import postprocess

    return postprocess.clean(row["raw"], row["finish"], row["looped"], row["question"] if echo else "").text


def old_shown(row: dict, weights: dict[str, float], supported: bool) -> str:
    """What the engine before issue 22 showed: the model's answer when the word check passed, else the best
    sentence of the passages it read (no rule against headings, questions or contents lines)."""
    from engine.answer import support
    from engine.retrieval.terms import sentences, term_keys

    if supported:
        return cleaned(row, echo=False)
    best, best_value = "", -1.0
    for rank, body in enumerate(row["passages"]):
        spans = sentences(body)
        if not spans:
            continue
        top = max(spans, key=lambda span: sum(w for t, w in weights.items() if t in term_keys(body[span[0]:span[1]])))
        value = support.coverage(term_keys(body[top[0]:top[1]]), weights) - 0.01 * rank
        if value > best_value:
            best, best_value = " ".join(body[top[0]:top[1]].split()), value
    return best


def open_documents(engine, sets: set[str]) -> dict:
    """(set) -> handle for a manual, (set, id) -> handle for a needle case (the PDFs bench/verdict_rows wrote)."""
    documents = {}
    for set_name in sets:
        if set_name in answers.MANUALS:
            documents[set_name] = engine.open_document(answers.manual_cases(set_name)[0])
            continue
        folder = verdict_rows.ROWS.parent / "answers-pdfs"
        for path in sorted(folder.glob(f"{set_name}-*.pdf")):
            documents[set_name, path.stem] = engine.open_document(path)
    return documents


def compute_signals(fresh: bool = False) -> list[dict]:
    """The signals of every row (those of rows already in verdict-signals.json are kept unless ``fresh``)."""
    import time

    from bench.common import contains_answer
    from engine.answer import verdict

    data = json.loads(verdict_rows.ROWS.read_text())
    out = [] if fresh or not SIGNALS.exists() else json.loads(SIGNALS.read_text())
    done = {(r["set"], r["id"]) for r in out}
    todo = [r for r in data["rows"] if (r["set"], r["id"]) not in done]
    engine = needles.bench_engine(answers.MAX_NEW_TOKENS)
    documents = open_documents(engine, {r["set"] for r in todo})
    for row in todo:
        started = time.perf_counter()
        found = row_signals(engine, documents, row, data["layout"])
        before = contains_answer(old_shown(row, found["weights"], bool(found["old_check"])), row["answer_any"])
        quote = verdict.best_sentence(row["question"], row["passages"], found["weights"])
        right = contains_answer(cleaned(row), row["answer_any"])
        out.append({"set": row["set"], "id": row["id"], "right": right, "before_right": before,
                    "quote_right": contains_answer(quote, row["answer_any"]) if quote else False,
                    "seconds": round(time.perf_counter() - started, 3), **found})
        print(row["set"], row["id"], "Y" if right else "-",
              {k: round(v, 3) for k, v in found.items() if k != "weights"}, flush=True)
        SIGNALS.write_text(json.dumps(out, indent=1))
    return out


def rates(supported: np.ndarray, right: np.ndarray) -> tuple[float | None, float | None, int]:
    """(share of wrong answers marked unsupported, share of right answers marked supported, wrong answers)."""
    wrong = ~right
    return (float((~supported[wrong]).mean()) if wrong.any() else None,
            float(supported[right].mean()) if right.any() else None, int(wrong.sum()))


def threshold_for(scores: np.ndarray, right: np.ndarray, keep: float = RIGHT_SUPPORTED) -> float:
    """The highest threshold that keeps at least ``keep`` of the right answers at or above it."""
    ordered = np.sort(scores[right])
    return float(ordered[int(np.floor((1 - keep) * len(ordered)))]) if len(ordered) else 0.5


def logistic(x: np.ndarray, y: np.ndarray, l2: float = 0.1, steps: int = 200) -> np.ndarray:
    """Weights (bias last) of a logistic regression fitted by Newton's method with an L2 penalty (bias free)."""
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    penalty = np.eye(len(w)) * l2
    penalty[-1, -1] = 0
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (p - y) + penalty @ w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + penalty + 1e-9 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def table(rows: list[dict], supported: np.ndarray, sets: list[str]) -> str:
    """Per set: wrong answers, the share marked unsupported, the share of right ones marked supported, and the
    accuracy before issue 22 and with this verdict (the answer, or the quote beside an unsupported one)."""
    text = ("| set | wrong answers | wrong marked unsupported | right marked supported | accuracy before | "
            "accuracy after |\n|---|---|---|---|---|---|\n")
    right = np.array([r["right"] for r in rows])
    after = right | (~supported & np.array([r.get("quote_right", False) for r in rows]))
    before = np.array([r.get("before_right", False) for r in rows])
    names = np.array([r["set"] for r in rows])
    for name in [*sets, "all development sets", "held-out sets"]:
        mine = (np.isin(names, verdict_rows.DEV_SETS) if name.startswith("all") else
                np.isin(names, verdict_rows.HELD_OUT) if name.startswith("held") else names == name)
        if not mine.any():
            continue
        unsupported, kept, wrong = rates(supported[mine], right[mine])
        cell = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
        text += (f"| {name} | {wrong} | {cell(unsupported)} | {cell(kept)} | {before[mine].mean():.2f} | "
                 f"{after[mine].mean():.2f} |\n")
    return text


def fit(rows: list[dict]) -> None:
    from engine.answer import verdict

    sets = list(dict.fromkeys(r["set"] for r in rows))
    dev = np.array([r["set"] in verdict_rows.DEV_SETS for r in rows])
    right = np.array([r["right"] for r in rows])
    print("old verdict (support.check on the model's answer)\n" + table(rows, np.array([bool(r["old_check"])
                                                                                         for r in rows]), sets))
    extra = [k for k in max(rows, key=len) if k not in ("set", "id", "right", "before_right", "quote_right",
                                                         "seconds", "old_check", "weights")]
    for name in dict.fromkeys([*verdict.SIGNALS, "checker", *extra]):
        values = np.array([r.get(name, 0.0) for r in rows], dtype=float)
        cut = threshold_for(values[dev], right[dev])
        print(f"{name} alone (supported when >= {cut:.3f})\n" + table(rows, values >= cut, sets))
    for label, names in COMBINATIONS.items():
        x = features([{k: r.get(k, 0.0) for k in names} for r in rows], names)
        w = logistic(x[dev], right[dev].astype(float))
        scores = 1 / (1 + np.exp(-(np.hstack([x, np.ones((len(x), 1))]) @ w)))
        cut = threshold_for(scores[dev], right[dev])
        coefficients = ", ".join(f"{n} {c:+.3f}" for n, c in zip([*names, "bias"], w))
        print(f"{label}: {coefficients}; threshold {cut:.3f}\n" + table(rows, scores >= cut, sets))
        print("  leave one set out:\n" + table(rows, leave_one_out(rows, x, right, dev), sets))


def leave_one_out(rows: list[dict], x: np.ndarray, right: np.ndarray, dev: np.ndarray) -> np.ndarray:
    """Supported or not for each row by a combination fitted (and thresholded) without its own set."""
    names = np.array([r["set"] for r in rows])
    supported = np.zeros(len(rows), dtype=bool)
    design = np.hstack([x, np.ones((len(x), 1))])
    for name in set(names):
        train = dev & (names != name)
        w = logistic(x[train], right[train].astype(float))
        scores = 1 / (1 + np.exp(-(design @ w)))
        supported[names == name] = scores[names == name] >= threshold_for(scores[train], right[train])
    return supported


def shipped(rows: list[dict]) -> str:
    """The table of the verdict the engine ships (engine/answer/verdict.py WEIGHTS, BIAS, THRESHOLD)."""
    from bench.common import contains_answer
    from engine.answer import verdict

    data = {(r["set"], r["id"]): r for r in json.loads(verdict_rows.ROWS.read_text())["rows"]}

    def judged(found: dict) -> bool:
        row = data[found["set"], found["id"]]
        if verdict.refusal(verdict.Claim(row["question"], cleaned(row), row["passages"])):
            return False  # the engine's rules (an instruction followed, a garbled name)
        return verdict.score(found) >= verdict.THRESHOLD if found["words"] or found.get("contrast") else False

    def quote_right(found: dict) -> bool:  # the quote as the engine chooses it now
        row = data[found["set"], found["id"]]
        quote = verdict.best_sentence(row["question"], row["passages"], found["weights"])
        return contains_answer(quote, row["answer_any"]) if quote else False

    rows = [{**r, "quote_right": quote_right(r)} for r in rows]
    supported = np.array([judged(r) for r in rows])
    sets = list(dict.fromkeys(r["set"] for r in rows))
    return (f"the engine's verdict ({', '.join(verdict.WEIGHTS)}; threshold {verdict.THRESHOLD}; an instruction "
            "followed or a garbled name is never supported; quotes chosen again)\n" + table(rows, supported, sets))


def hygiene(signals: list[dict]) -> str:
    """Per set: answers that echo the question or open with a frame ("The answer is:"), and quotes (the sentence
    shown beside an unsupported answer) that are empty, a heading, a question or a contents line."""
    from bench.answers import echoes, quotable
    from engine.answer import postprocess, verdict

    weights = {(r["set"], r["id"]): r["weights"] for r in signals}
    counts: dict[str, list[int]] = {}
    for row in json.loads(verdict_rows.ROWS.read_text())["rows"]:
        text = cleaned(row)
        quote = verdict.best_sentence(row["question"], row["passages"], weights.get((row["set"], row["id"]), {}))
        count = counts.setdefault(row["set"], [0, 0, 0, 0])
        count[0] += 1
        count[1] += echoes(text, row["question"])
        count[2] += postprocess.framed(text)
        count[3] += not quotable(quote)
    text = "| set | answers | echo the question | open with a frame | empty or bad quotes |\n|---|---|---|---|---|\n"
    return text + "".join(f"| {name} | {n} | {e} | {f} | {q} |\n" for name, (n, e, f, q) in counts.items())


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    step = sys.argv[1] if len(sys.argv) > 1 else "fit"
    found = compute_signals("--fresh" in sys.argv) if step == "signals" else json.loads(Path(SIGNALS).read_text())
    fit(found)
    print(shipped(found))
    print(hygiene(found))
