"""Logits processors that stand in for thinking models in the engine tests (a random model never
writes think markup). Imported by those tests' fixtures only: importing vLLM takes seconds, which
every xdist worker would pay at collection."""

from __future__ import annotations

from vllama.engine.args import EngineSettings

EngineSettings().apply_process_env()  # before vLLM is imported: it reads these at import

from vllm.v1.sample.logits_processor import AdapterLogitsProcessor  # noqa: E402

from tests.engine.test_format_after_thinking_engine import THINK_CLOSE, THINK_OPEN  # noqa: E402
from tests.engine.test_format_after_thinking_engine import THOUGHT_TOKENS as FORMAT_THOUGHT_TOKENS  # noqa: E402
from tests.engine.test_thinking_stop_strings_engine import THOUGHT_TOKENS as STOPS_THOUGHT_TOKENS  # noqa: E402


class ThinkThenFinish(AdapterLogitsProcessor):
    """Stands in for a thinking model that answers briefly, where the grammar allows it (a token the
    grammar masked stays masked, so a constrained reply only ever gets a choice among what the grammar
    allows): `<think>` first, `</think>` after FORMAT_THOUGHT_TOKENS tokens of free thought, then, in the
    answer, the end of the reply or else a closing `}`, `"` or a `:` (a random model would write one JSON
    string to the token limit)."""

    def __init__(self, vllm_config, device, is_pin_memory):
        super().__init__(vllm_config, device, is_pin_memory)
        from vllm.tokenizers import cached_tokenizer_from_config

        vocab = cached_tokenizer_from_config(model_config=vllm_config.model_config).get_vocab()
        self.open_id, self.close_id = vocab[THINK_OPEN], vocab[THINK_CLOSE]
        self.finish_ids = [vocab["<|im_end|>"], vocab["}"], vocab['"'], vocab[":"]]

    def is_argmax_invariant(self) -> bool:
        return False  # it changes what greedy decoding picks

    def new_req_logits_processor(self, params):
        def favour(output_ids, logits):
            at = len(output_ids)
            thinking = at > 0 and output_ids[0] == self.open_id and self.close_id not in output_ids
            if at == 0 and self._boost(logits, [self.open_id]):
                return logits
            if thinking:
                if at == FORMAT_THOUGHT_TOKENS + 1:
                    self._boost(logits, [self.close_id])
                return logits
            self._boost(logits, self.finish_ids)
            return logits

        return favour

    @staticmethod
    def _boost(logits, ids) -> bool:
        for token_id in ids:
            if bool(logits[token_id].isfinite()):
                logits[token_id] = logits.max() + 100.0
                return True
        return False


class ThinkThenAnswer(AdapterLogitsProcessor):
    """Stands in for a thinking model: `<think>` first, `</think>` after STOPS_THOUGHT_TOKENS tokens of free
    thought, then free text with no markers and no end of turn (it runs to num_predict)."""

    def __init__(self, vllm_config, device, is_pin_memory):
        super().__init__(vllm_config, device, is_pin_memory)
        from vllm.tokenizers import cached_tokenizer_from_config

        vocab = cached_tokenizer_from_config(model_config=vllm_config.model_config).get_vocab()
        self.open_id, self.close_id, self.end_id = vocab[THINK_OPEN], vocab[THINK_CLOSE], vocab["<|im_end|>"]

    def is_argmax_invariant(self) -> bool:
        return False  # it changes what greedy decoding picks

    def new_req_logits_processor(self, params):
        def favour(output_ids, logits):
            at = len(output_ids)
            banned = [self.end_id] + ([self.open_id, self.close_id] if at else [])
            if at == 0:
                logits[self.open_id] = logits.max() + 100.0
            elif at == STOPS_THOUGHT_TOKENS + 1:
                banned.remove(self.close_id)
                logits[self.close_id] = logits.max() + 100.0
            for token_id in banned:
                logits[token_id] = float("-inf")
            return logits

        return favour
