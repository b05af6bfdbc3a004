"""Analyzers, and :func:`create_analyzer` with every built-in name registered.

Names follow iNNvestigate so its users can migrate: ``"gradient"``,
``"input_t_gradient"``, ``"lrp.epsilon"``, ``"lrp.alpha_2_beta_1"``, ... and
``"lrp.<composite>"`` for every registered composite preset.
"""

from __future__ import annotations

from tfxai import rules
from tfxai.analyzers.base import Analyzer
from tfxai.analyzers.baselines import InputAnalyzer, RandomAnalyzer
from tfxai.analyzers.cam import GradCAM, GradCAMPlusPlus
from tfxai.analyzers.deep_taylor import BoundedDeepTaylor, DeepTaylor
from tfxai.analyzers.deeplift import DeepLIFT, DeepSHAP
from tfxai.analyzers.factory import (
    BASE_OPTIONS,
    LRP_OPTIONS,
    UnknownAnalyzerError,
    analyzer_class,
    analyzer_names,
    analyzer_parameters,
    create_analyzer,
    lrp_generic,
    register_analyzer,
    register_presets,
    rule_variant,
    uniform_lrp,
)
from tfxai.analyzers.gradient import Gradient, InputTimesGradient
from tfxai.analyzers.guided import Deconvnet, GuidedBackprop
from tfxai.analyzers.integrated import IntegratedGradients
from tfxai.analyzers.lime import LIME
from tfxai.analyzers.lrp import LRP
from tfxai.analyzers.noise import NoiseTunnel, SmoothGrad, SquareGrad, VarGrad
from tfxai.analyzers.occlusion import Occlusion
from tfxai.analyzers.rise import RISE
from tfxai.analyzers.scorecam import ScoreCAM
from tfxai.analyzers.shap import GradientSHAP, KernelSHAP
from tfxai.analyzers.sobol import SobolAttribution

register_analyzer("gradient", analyzer_class(Gradient))
register_analyzer("input_t_gradient", analyzer_class(InputTimesGradient))
register_analyzer("lrp", lrp_generic)
_UNIFORM = {
    "lrp.z": rule_variant(rules.Z),
    "lrp.z_IB": rule_variant(rules.Z, ignore_bias=True),
    "lrp.epsilon": rule_variant(rules.Epsilon),
    "lrp.epsilon_IB": rule_variant(rules.Epsilon, ignore_bias=True),
    "lrp.gamma": rule_variant(rules.Gamma),
    "lrp.alpha_beta": rule_variant(rules.AlphaBeta),
    "lrp.alpha_1_beta_0": rule_variant(rules.AlphaBeta, alpha=1.0, beta=0.0),
    "lrp.alpha_1_beta_0_IB": rule_variant(rules.AlphaBeta, alpha=1.0, beta=0.0, ignore_bias=True),
    "lrp.alpha_2_beta_1": rule_variant(rules.AlphaBeta, alpha=2.0, beta=1.0),
    "lrp.alpha_2_beta_1_IB": rule_variant(rules.AlphaBeta, alpha=2.0, beta=1.0, ignore_bias=True),
    "lrp.z_plus": rule_variant(rules.ZPlus),
    "lrp.w_square": rule_variant(rules.WSquare),
    "lrp.flat": rule_variant(rules.Flat),
}
for _name, _make in _UNIFORM.items():
    register_analyzer(_name, uniform_lrp(_make))
register_analyzer("lrp.bounded", uniform_lrp(rule_variant(rules.Z), first_rule=rules.ZBox))
register_presets()


_CLASSES = {
    "smoothgrad": SmoothGrad,
    "vargrad": VarGrad,
    "noise_tunnel": NoiseTunnel,
    "integrated_gradients": IntegratedGradients,
    "guided_backprop": GuidedBackprop,
    "deconvnet": Deconvnet,
    "grad_cam": GradCAM,
    "grad_cam_plus_plus": GradCAMPlusPlus,
    "occlusion": Occlusion,
    "squaregrad": SquareGrad,
    "deeplift": DeepLIFT,
    "deep_shap": DeepSHAP,
    "gradient_shap": GradientSHAP,
    "kernel_shap": KernelSHAP,
    "lime": LIME,
    "rise": RISE,
    "score_cam": ScoreCAM,
    "sobol": SobolAttribution,
    "input": InputAnalyzer,
    "random": RandomAnalyzer,
}
for _name, _cls in _CLASSES.items():
    register_analyzer(_name, analyzer_class(_cls))
register_analyzer("deeplift.reveal_cancel", analyzer_class(DeepLIFT, reveal_cancel=True))
register_analyzer("deep_taylor", analyzer_class(DeepTaylor, LRP_OPTIONS))
register_analyzer("deep_taylor.bounded", analyzer_class(BoundedDeepTaylor, LRP_OPTIONS))

__all__ = [
    "Analyzer",
    "BoundedDeepTaylor",
    "Deconvnet",
    "DeepLIFT",
    "DeepSHAP",
    "DeepTaylor",
    "Gradient",
    "GradCAM",
    "GradCAMPlusPlus",
    "GradientSHAP",
    "GuidedBackprop",
    "InputAnalyzer",
    "InputTimesGradient",
    "IntegratedGradients",
    "KernelSHAP",
    "LIME",
    "LRP",
    "NoiseTunnel",
    "Occlusion",
    "RISE",
    "RandomAnalyzer",
    "ScoreCAM",
    "SmoothGrad",
    "SobolAttribution",
    "SquareGrad",
    "UnknownAnalyzerError",
    "VarGrad",
    "analyzer_names",
    "analyzer_parameters",
    "create_analyzer",
    "register_analyzer",
]
