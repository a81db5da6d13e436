import pytest

import widthprune as wp
from widthprune.pruning.architectures import count_shape_parameters, expansion_ratio, pct_width


@pytest.mark.parametrize(
    "pct, width",
    [(0, 8192), (10, 7373), (20, 6554), (30, 5735), (40, 4916), (50, 4096), (60, 3277)],
)
def test_study_widths(pct, width):
    assert pct_width(8192, pct) == width
    config = wp.llama_config(wp.get_shape("llama-3.2-1b"))
    assert wp.target_width(config, pruning_pct=pct) == width


def test_parameter_counts_of_the_study():
    one_b, three_b = wp.get_shape("llama-3.2-1b"), wp.get_shape("llama-3.2-3b")
    assert count_shape_parameters(one_b) == 1_235_814_400
    assert count_shape_parameters(one_b, 4916) == 913_770_496
    assert count_shape_parameters(three_b) == 3_212_749_824
    assert count_shape_parameters(three_b, 7373) == 3_001_408_512


def test_both_2_4x_points():
    one_b = wp.llama_config(wp.get_shape("llama-3.2-1b"))
    three_b = wp.llama_config(wp.get_shape("llama-3.2-3b"))
    assert expansion_ratio(one_b) == 4.0
    assert round(expansion_ratio(three_b), 2) == 2.67
    assert round(wp.target_width(one_b, pruning_pct=40) / 2048, 2) == 2.4
    assert round(wp.target_width(three_b, pruning_pct=10) / 3072, 2) == 2.4


def test_unknown_shape_suggests():
    with pytest.raises(KeyError, match="llama-3.2-1b"):
        wp.get_shape("llama-3.2-1")


def test_config_matches_shape():
    config = wp.llama_config(wp.get_shape("llama-3.2-3b", intermediate_size=4096))
    assert (config.hidden_size, config.intermediate_size, config.num_hidden_layers) == (
        3072,
        4096,
        28,
    )
    assert (config.num_attention_heads, config.num_key_value_heads, config.head_dim) == (24, 8, 128)
    assert config.tie_word_embeddings and config.vocab_size == 128_256
