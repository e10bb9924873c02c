"""Model registry: exact parameter counts, shapes, overrides, causality."""

import pytest
import torch

from edgepose.errors import EdgeposeError
from edgepose.models import count_params, create, get_entry, list_models

EXPECTED = {"wiflow-full": 2_225_042, "wiflow-half": 843_834, "wiflow-quarter": 338_600, "wiflow-tiny": 56_290}


def test_registry_lists_the_family():
    assert list_models() == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_counts_and_shapes(name):
    model = create(name).eval()
    assert count_params(model) == EXPECTED[name] == get_entry(name).params
    with torch.no_grad():
        assert model(torch.randn(2, 540, 20)).shape == (2, 15, 2)


def test_mmfi_overrides():
    model = create("wiflow-half", in_channels=342, window=10, joints=17).eval()
    with torch.no_grad():
        assert model(torch.randn(3, 342, 10)).shape == (3, 17, 2)


def test_temporal_convolutions_are_causal():
    """Changing the last time step must not change the TCN's features at earlier steps."""
    model = create("wiflow-half").eval()
    x = torch.randn(1, 540, 20)
    y = x.clone()
    y[..., -1] += 5.0
    with torch.no_grad():
        fx, fy = model.tcn(x), model.tcn(y)
    assert torch.allclose(fx[..., :-1], fy[..., :-1], atol=1e-5)
    assert not torch.allclose(fx[..., -1], fy[..., -1])


def test_unknown_model_and_bad_override():
    with pytest.raises(EdgeposeError, match="unknown model 'wiflow-huge'"):
        create("wiflow-huge")
    with pytest.raises(EdgeposeError, match="bad override"):
        create("wiflow-half", nonsense=3)
