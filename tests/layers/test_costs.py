import pytest

from keras_superattn import costs
from keras_superattn import layers
from tests.helpers import VARIANTS

# Pinned by hand from docs/paper.md for l = d = 32, h = 4.
PARAMS_32 = {"standard": 4224, "optimized": 3168, "efficient": 2112, "super": 3136}
PARAMS_32_NO_BIAS = {"standard": 4096, "optimized": 3072, "efficient": 2048, "super": 3072}
FLOPS_32 = {"standard": 393216, "optimized": 327680, "efficient": 262144, "super": 327680}


@pytest.mark.parametrize("use_bias, pinned", [(True, PARAMS_32), (False, PARAMS_32_NO_BIAS)])
def test_pinned_parameter_counts_match_the_layers(variant, use_bias, pinned):
    cost = costs.attention_cost(variant, 32, 32, 4, use_bias=use_bias)
    assert cost.params == pinned[variant]
    layer = VARIANTS[variant](num_heads=4, use_bias=use_bias)
    layer.build((None, 32, 32))
    assert layer.count_params() == pinned[variant]


@pytest.mark.parametrize("l, d, h", [(128, 256, 8), (512, 512, 8), (7, 24, 3)])
def test_parameter_counts_match_the_layers_elsewhere(variant, l, d, h):
    layer = VARIANTS[variant](num_heads=h)
    layer.build((None, l, d))
    assert costs.attention_cost(variant, l, d, h).params == layer.count_params()


def test_pinned_flops(variant):
    cost = costs.attention_cost(variant, 32, 32, 4)
    assert cost.forward_flops == FLOPS_32[variant]
    assert cost.training_flops == 3 * FLOPS_32[variant]


def test_flop_ratios_at_the_benchmark_setting():
    standard = costs.attention_cost("standard", 128, 256, 8).forward_flops
    ratios = {
        v: costs.attention_cost(v, 128, 256, 8).forward_flops / standard
        for v in ("optimized", "efficient", "super")
    }
    assert ratios == pytest.approx({"optimized": 0.8, "efficient": 0.6, "super": 0.7})


def test_super_is_cheaper_than_standard_only_below_twice_d():
    def cheaper(l):
        return costs.attention_cost("super", l, 64, 4).forward_flops < costs.attention_cost(
            "standard", l, 64, 4
        ).forward_flops

    assert cheaper(127) and not cheaper(128)


@pytest.mark.parametrize(
    "args, match",
    [
        (("sdpa", 8, 8, 2), r"`variant` must be one of .*Received: variant='sdpa'"),
        (("standard", 0, 8, 2), r"`sequence_length`.*Received: sequence_length=0"),
        (("standard", 8, 10, 4), r"multiple of `num_heads`.*model_dim=10, num_heads=4"),
    ],
)
def test_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        costs.attention_cost(*args)


def test_a_new_variant_costs_what_its_flags_say():
    class QueryOnly(layers.BaseAttention):  # no key or value projection, as Efficient
        projects_key = False
        projects_value = False

    assert costs.attention_cost(QueryOnly, 32, 32, 4) == costs.attention_cost("efficient", 32, 32, 4)
    layer = QueryOnly(num_heads=4)
    layer.build((None, 32, 32))
    assert costs.attention_cost(QueryOnly, 32, 32, 4).params == layer.count_params()
