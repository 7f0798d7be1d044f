import pytest

from vllama.engine.options import OptionError, max_new_tokens, parse_options, sampling_kwargs


def test_defaults_are_ollamas():
    s = sampling_kwargs(parse_options(None), max_tokens=10)
    assert (s["temperature"], s["top_k"], s["top_p"], s["min_p"], s["repetition_penalty"]) == (0.8, 40, 0.9, 0.0, 1.0)
    assert s["seed"] is None and s["stop"] is None and s["max_tokens"] == 10


def test_request_overrides_model_parameters():
    opts = parse_options({"temperature": 0.1}, overrides={"temperature": 0.5, "top_k": 7})
    s = sampling_kwargs(opts, 1)
    assert (s["temperature"], s["top_k"]) == (0.1, 7)


def test_ints_truncate_and_unknown_keys_are_ignored():
    opts = parse_options({"num_ctx": 2048.7, "mirostat": 2, "tfs_z": "x", "penalize_newline": True, "seed": None})
    assert opts.num_ctx == 2048 and opts["seed"] == -1


@pytest.mark.parametrize("options,message", [
    ({"temperature": "hot"}, 'option "temperature" must be of type float32'),
    ({"top_k": True}, 'option "top_k" must be of type integer'),
    ({"stop": "x"}, 'option "stop" must be of an array of strings'),
    ({"stop": [1]}, 'option "stop" must be of an array of strings'),
    ({"use_mmap": 1}, 'option "use_mmap" must be of type boolean'),
])
def test_wrong_types(options, message):
    with pytest.raises(OptionError, match=message):
        parse_options(options)


def test_out_of_range_values_are_clamped_to_vllm_ranges():
    s = sampling_kwargs(parse_options({"temperature": -1, "top_p": 0, "top_k": -5, "presence_penalty": 9,
                                       "repeat_penalty": 0, "seed": 2**70}), 5)
    assert (s["temperature"], s["top_p"], s["top_k"], s["presence_penalty"], s["repetition_penalty"]) == (0, 1.0, 0, 2.0, 1.0)
    assert 0 <= s["seed"] < 2**63


def test_repeat_last_n_zero_disables_penalty():
    s = sampling_kwargs(parse_options({"repeat_penalty": 1.3, "repeat_last_n": 0}), 5)
    assert s["repetition_penalty"] == 1.0


@pytest.mark.parametrize("num_predict,expected", [(-1, 90), (0, 90), (5, 5), (500, 90)])
def test_max_new_tokens(num_predict, expected):
    assert max_new_tokens(num_predict, prompt_len=10, context_len=100) == expected
