"""The WiFlow-STD model family behind a registry: ``create(name, **overrides)``, ``list_models()``."""

from edgepose.models._registry import ModelEntry, count_params, create, get_entry, list_models, model_config, register
from edgepose.models.wiflow import WiFlowConfig, WiFlowSTD

register(ModelEntry(
    "wiflow-full", WiFlowSTD,
    WiFlowConfig(tcn_channels=(540, 440, 340, 240), conv_widths=(8, 8, 16, 32, 64), attn_groups=8, decoder_width=32),
    2_225_042, "WiFlow-STD at full width",
))
register(ModelEntry("wiflow-half", WiFlowSTD, WiFlowConfig(), 843_834, "half width: the reference quantization study's model"))
register(ModelEntry(
    "wiflow-quarter", WiFlowSTD,
    WiFlowConfig(tcn_channels=(135, 110, 85, 60), conv_widths=(2, 2, 4, 8, 16), attn_groups=2, decoder_width=8),
    338_600, "quarter width",
))
register(ModelEntry(
    "wiflow-tiny", WiFlowSTD,
    WiFlowConfig(tcn_channels=(68, 56, 44, 32), tcn_depthwise=True, tcn_input_groups=4,
                 conv_widths=(2, 2, 4, 8, 16), attn_groups=2, decoder_width=8),
    56_290, "depthwise temporal convs, grouped input projection",
))

__all__ = ["ModelEntry", "WiFlowConfig", "WiFlowSTD", "count_params", "create", "get_entry", "list_models",
           "model_config", "register"]
