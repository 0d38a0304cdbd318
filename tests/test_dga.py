"""Dynamic Group Attention: exactness limits, GQA, confinement, relevance and evidence."""
from __future__ import annotations

import copy

import pytest
import torch

from engine.api import Engine, EngineSettings
from engine.attention import contract as attention
from engine.attention import dga
from engine.model import generation


def _answer_logits(model, prefix, question, settings, steps=6):
    """Logits of the question's last position and of ``steps`` greedy decode steps (teacher-forced), with the
    question fed in chunks of ``chunk`` tokens as the engine does."""
    cache = generation.new_cache(model.config)
    generation.prefill(model, prefix, cache)
    run = dga.DgaRun(settings, doc_start=2, doc_end=len(prefix)) if settings else None
    outputs = [generation.prefill(model, question, cache, run=run, phase="question", chunk_size=3)]
    for _ in range(steps):
        token = torch.tensor([[int(outputs[-1].argmax())]])
        outputs.append(generation.forward_logits(model, token, cache, run, "decode"))
    return torch.stack(outputs), run


@pytest.fixture(scope="module")
def tiny(tiny_engine):
    model = copy.deepcopy(tiny_engine.loaded.model)
    attention.enable(model)
    return model


PREFIX = list(range(100, 400))
QUESTION = [17, 29, 31, 45, 12]


def test_gamma_one_reproduces_dense_logits(tiny):
    dense, _ = _answer_logits(tiny, PREFIX, QUESTION, None)
    full, run = _answer_logits(tiny, PREFIX, QUESTION, dga.DgaSettings(gamma=1.0, reselect_every=2))
    torch.testing.assert_close(full, dense, rtol=1e-5, atol=1e-5)
    assert run.attended_fraction() == 1.0


@pytest.mark.parametrize("bias", ["lse", "log_m"])
def test_singleton_groups_reproduce_dense_logits(tiny, bias):
    dense, _ = _answer_logits(tiny, PREFIX, QUESTION, None)
    grouped, _ = _answer_logits(tiny, PREFIX, QUESTION,
                                dga.DgaSettings(gamma=0.0, group_size=1, sinks=0, bias=bias, reselect_every=3, min_focal=0))
    torch.testing.assert_close(grouped, dense, rtol=1e-4, atol=1e-4)


def test_compression_changes_logits_and_attends_a_fraction(tiny):
    dense, _ = _answer_logits(tiny, PREFIX, QUESTION, None)
    sparse, run = _answer_logits(tiny, PREFIX, QUESTION, dga.DgaSettings(gamma=0.1, group_size=16, min_focal=0))
    assert not torch.allclose(sparse[1:], dense[1:], atol=1e-4)  # decode really used the compressed keys
    torch.testing.assert_close(sparse[0], dense[0])  # the question itself is read densely
    length = len(PREFIX) - 2  # 298 document tokens: 4 sinks, 18 blocks of 16 (288), a remainder of 6
    expected = (4 + 30 + 18 + 6) / length  # sinks + focal + groups + remainder, as in DESIGN (gamma + 1/m)
    assert run.attended_fraction() == pytest.approx(expected, abs=2e-3)


def test_grouped_query_model_is_used(tiny):
    config = tiny.config
    assert config.num_key_value_heads < config.num_attention_heads  # the fixture is a GQA model
    _, run = _answer_logits(tiny, PREFIX, QUESTION, dga.DgaSettings(min_focal=0))
    state = run.layers[0]
    assert state.buffer.keys.shape[1] == config.num_key_value_heads
    assert state.focal.shape[:2] == (1, config.num_key_value_heads)
    assert state.focal.shape[-1] == 30  # ceil(0.1 * 298) per KV head


def test_patch_is_confined_to_the_model_instance(tiny_engine, tiny):
    from transformers import AutoModelForCausalLM

    other = AutoModelForCausalLM.from_pretrained(tiny_engine.loaded.model.name_or_path)
    assert tiny.config._attn_implementation == attention.ATTENTION_NAME
    assert other.config._attn_implementation != attention.ATTENTION_NAME
    for module in tiny.modules():  # the attention modules' forward methods are the library's own
        if module.__class__.__name__.endswith("Attention"):
            assert "forward" not in vars(module)


def _blocks(keys, values, query_ref, settings):
    return dga.build_blocks(keys, values, 0, keys.shape[2], query_ref, settings, 0.5)


def test_fold_blocks_by_hand():
    keys, values = torch.randn(1, 1, 12, 4), torch.randn(1, 1, 12, 4)
    settings = dga.DgaSettings(gamma=0.1, group_size=4, sinks=0, smoothing=1, follow=0, weighting="mean",
                               bias="log_m")
    blocks = _blocks(keys, values, torch.zeros(1, 1, 4), settings)
    focal = torch.tensor([[[6, 8, 9, 10, 11]]])  # block 2 (8-11) is entirely focal
    focal_keys, _, group_keys, group_values, bias = dga.fold_blocks(blocks, focal, settings, 0.5)
    torch.testing.assert_close(focal_keys[0, 0], keys[0, 0, [6, 8, 9, 10, 11]])
    torch.testing.assert_close(group_keys[0, 0, 0], keys[0, 0, 0:4].mean(0))
    torch.testing.assert_close(group_keys[0, 0, 1], keys[0, 0, [4, 5, 7]].mean(0))  # focal 6 taken out
    torch.testing.assert_close(group_values[0, 0, 1], values[0, 0, [4, 5, 7]].mean(0))
    torch.testing.assert_close(bias[0, 0, :2], torch.log(torch.tensor([4.0, 3.0])))
    assert bias[0, 0, 2] == float("-inf")  # an emptied group is never attended


def test_lse_bias_matches_member_mass_at_reference_query():
    keys = torch.randn(1, 2, 40, 8)
    query = torch.randn(1, 2, 8)
    settings = dga.DgaSettings(gamma=0.0, group_size=8, sinks=0)
    blocks = dga.build_blocks(keys, torch.randn(1, 2, 40, 8), 0, 40, query, settings, 0.3)
    focal = torch.tensor([[[3, 17]], [[5, 30]]]).view(1, 2, 2)
    _, _, group_keys, _, bias = dga.fold_blocks(blocks, focal, settings, 0.3)
    grouped = torch.einsum("bhgd,bhd->bhg", group_keys, query) * 0.3 + bias
    logits = (torch.einsum("bhnd,bhd->bhn", keys, query) * 0.3)
    logits = logits.scatter(2, focal, float("-inf"))  # focal tokens are not in any group
    torch.testing.assert_close(grouped, logits.view(1, 2, 5, 8).logsumexp(-1), rtol=1e-4, atol=1e-4)


def test_follow_scores_spread_forward():
    from engine.attention import ops as attention_ops

    scores = torch.tensor([[[0.0, 5.0, 0.0, 0.0, 1.0, 0.0]]])
    assert attention_ops.follow_scores(scores, 2).tolist() == [[[0.0, 5.0, 5.0, 5.0, 1.0, 1.0]]]


@pytest.mark.parametrize("mode", ["dense", "dga"])
def test_answers_over_the_whole_document_report_relevance_and_evidence(tiny_model_dir, library, fact_pdf, mode):
    engine = Engine(EngineSettings(model=str(tiny_model_dir), device="cpu").changed(answer={"max_new_tokens": 6, "context": "document"}, attention={"mode": mode, "dga": {"min_focal": 16}}), library=library)
    doc = engine.open_document(fact_pdf)
    answer = engine.ask(doc, "What is the code?")
    assert answer.attention["mode"] == mode and answer.attention["context"] == "document"
    assert (answer.attention["attended_fraction"] == 1.0) == (mode == "dense")
    assert answer.token_scores.shape == (doc.total_tokens,) and answer.token_scores.sum() > 0
    assert answer.evidence and answer.evidence == sorted(answer.evidence, key=lambda e: -e.score)
    for item in answer.evidence:
        assert 1 <= item.page <= 3 and item.boxes and item.text
        first, last = item.words
        words = doc.ingested.words[first:last]
        assert [[round(w.x0, 1), round(w.y0, 1), round(w.x1, 1), round(w.y1, 1)] for w in words] == item.boxes


def test_short_documents_keep_at_least_min_focal_tokens(tiny):
    _, run = _answer_logits(tiny, PREFIX, QUESTION, dga.DgaSettings(min_focal=100))
    assert run.layers[0].focal.shape[-1] == 100  # more than ceil(0.1 * 298) = 30
    _, run = _answer_logits(tiny, PREFIX, QUESTION, dga.DgaSettings(min_focal=1000))
    assert run.attended_fraction() == 1.0  # a document shorter than the floor is kept whole


def test_unknown_attention_mode_is_refused_when_the_settings_are_made():
    from engine.settings import SettingsError

    with pytest.raises(SettingsError, match="Unknown attention mode 'magic'; use one of dga, dense"):
        EngineSettings().changed(attention={"mode": "magic"})


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_on_gpu(tiny, dtype):
    model = copy.deepcopy(tiny).to("cuda", dtype)
    dense, _ = _answer_logits(model, PREFIX, QUESTION, None)
    full, _ = _answer_logits(model, PREFIX, QUESTION, dga.DgaSettings(gamma=1.0))
    torch.testing.assert_close(full.float(), dense.float(), rtol=2e-2, atol=2e-2)
