"""Synthesizer state-dict layout equals the original SynthesizerTrn's, for every variant."""

from __future__ import annotations

import pytest
import torch

from sovits.errors import ConfigError
from sovits.models.synthesizer import Synthesizer
from tests.conftest import VARIANTS
from tests.models.synth_factory import (
    build_synthesizer,
    reference_keys,
    synthesizer_kwargs,
    variant_config,
)


def _dtype_name(tensor: torch.Tensor) -> str:
    return str(tensor.dtype).removeprefix("torch.")


@pytest.mark.parametrize("variant", VARIANTS)
def test_state_dict_keys_shapes_dtypes_and_order_equal_the_original(variant: str) -> None:
    state = build_synthesizer(variant).state_dict()
    mine = [(key, list(value.shape), _dtype_name(value)) for key, value in state.items()]
    assert mine == reference_keys(variant)


def test_shared_flow_parameters_appear_under_wn_and_every_coupling() -> None:
    model = build_synthesizer("c_dsconv_share")
    shared = dict(model.flow.wn.named_parameters())  # type: ignore[union-attr]
    assert shared
    for index in (0, 2, 4, 6):
        coupling = dict(model.flow.flows[index].enc.named_parameters())
        assert coupling.keys() == shared.keys()
        for name, parameter in coupling.items():
            assert parameter is shared[name]


def test_depthwise_conv_is_per_instance_not_global() -> None:
    # Building a depthwise model must not change how the next model is built.
    depthwise = build_synthesizer("c_dsconv_share")
    plain = build_synthesizer("b_vol")
    assert any(".depth_conv." in key for key in depthwise.state_dict())
    assert not any(".depth_conv." in key for key in plain.state_dict())


def test_n_layers_q_has_no_effect_like_the_original() -> None:
    config = variant_config("f_resblock2_nof0pred")
    assert "n_layers_q" not in synthesizer_kwargs(config)
    model = build_synthesizer("f_resblock2_nof0pred")
    assert len(model.enc_q.enc.in_layers) == 16


def test_unknown_vocoder_name_is_a_config_error() -> None:
    kwargs = synthesizer_kwargs(variant_config("f_resblock2_nof0pred"))
    kwargs["vocoder_name"] = "hifigan-v9"
    with pytest.raises(ConfigError, match="vocoder_name"):
        Synthesizer(**kwargs)
