"""Tiny random models of each popular open family, built from transformers' own config classes (nothing is
downloaded): 2 layers, hidden size 64, head size 16, grouped-query attention, and whatever makes the family
itself: Llama 3.x rope scaling, Qwen2's biases, Qwen3's key norms, Mistral's sliding window, Gemma 2's
soft-capping, Gemma 3's two rotary bases, Phi-3/4's partial rotary, SmolLM3's layers without RoPE.

Windows are small (``SLIDING`` tokens) so that a test input is longer than every sliding window."""
from __future__ import annotations

from pathlib import Path

SLIDING = 32  # the sliding window of the families that have one


def _common(tokenizer, window: int) -> dict:
    return dict(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=window,
                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=None,
                tie_word_embeddings=True, initializer_range=0.5)


def _llama3(common):
    from transformers import LlamaConfig, LlamaForCausalLM

    scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
               "original_max_position_embeddings": 64, "rope_theta": 500000.0}
    return LlamaForCausalLM(LlamaConfig(**common, rope_parameters=scaling))


def _smollm2(common):
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(**common))


def _smollm3(common):
    from transformers import SmolLM3Config, SmolLM3ForCausalLM

    return SmolLM3ForCausalLM(SmolLM3Config(**common, no_rope_layers=[1, 0]))


def _qwen2(common):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    return Qwen2ForCausalLM(Qwen2Config(**common, rope_parameters={"rope_type": "default", "rope_theta": 1e6}))


def _qwen3(common):
    from transformers import Qwen3Config, Qwen3ForCausalLM

    return Qwen3ForCausalLM(Qwen3Config(**common))


def _mistral(common):
    from transformers import MistralConfig, MistralForCausalLM

    return MistralForCausalLM(MistralConfig(**common, sliding_window=SLIDING))


def _gemma2(common):
    from transformers import Gemma2Config, Gemma2ForCausalLM

    config = Gemma2Config(**common, sliding_window=SLIDING, layer_types=["sliding_attention", "full_attention"],
                          attn_logit_softcapping=50.0, final_logit_softcapping=30.0, query_pre_attn_scalar=16)
    return Gemma2ForCausalLM(config)


def _gemma3(common):
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    rope = {"sliding_attention": {"rope_type": "default", "rope_theta": 10000.0},
            "full_attention": {"rope_type": "linear", "factor": 8.0, "rope_theta": 1e6}}
    config = Gemma3TextConfig(**common, sliding_window=SLIDING, layer_types=["sliding_attention", "full_attention"],
                              rope_parameters=rope, query_pre_attn_scalar=16)
    return Gemma3ForCausalLM(config)


def _phi3(common):
    from transformers import Phi3Config, Phi3ForCausalLM

    # Phi-4-mini rotates 3/4 of each head; Phi-3-mini-4k slides its window.
    rope = {"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.75}
    return Phi3ForCausalLM(Phi3Config(**common, rope_parameters=rope, sliding_window=SLIDING))


FAMILIES = {"llama3": _llama3, "smollm2": _smollm2, "smollm3": _smollm3, "qwen2": _qwen2, "qwen3": _qwen3,
            "mistral": _mistral, "gemma2": _gemma2, "gemma3": _gemma3, "phi3": _phi3}
# Every layer slides: a segment's keys equal the whole document's once the overlap covers the window.
ALL_SLIDING = ("mistral", "phi3")


def make_family_model(family: str, folder: Path, tokenizer_dir: Path, window: int = 2048, seed: int = 0) -> Path:
    """A tiny random model of ``family`` with the bundled tokenizer, saved as a model folder."""
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(seed)
    model = FAMILIES[family](_common(tokenizer, window))
    blank = [i for i in range(len(tokenizer)) if not tokenizer.decode([i]).strip()]
    with torch.no_grad():  # as conftest.make_tiny_model: answers are words, not blanks
        model.get_input_embeddings().weight[sorted(set(blank) | set(tokenizer.all_special_ids))] = 0
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_gpt2_model(folder: Path, tokenizer_dir: Path, window: int = 1024) -> Path:
    """A tiny GPT-2: learned absolute positions, so its keys cannot be moved to other positions."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=len(tokenizer), n_embd=64, n_layer=2, n_head=4, n_positions=window,
                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
