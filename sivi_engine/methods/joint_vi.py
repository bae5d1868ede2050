"""Joint VI over a hierarchy: mean-field Gaussian VI on (x, u), with u the mixing variable of
the target's semi-implicit factor (the "joint" baseline of DSIVI's hierarchical-prior BNN;
Molchanov et al. 2019, §5.3).

For log p(x) = log ℓ(x) + log ∫ π(x | u) π(u) du the joint ELBO

    ELBO_joint(q) = E_{q(x) q(u)}[log ℓ(x) + log π(x | u) + log π(u)] + H(q(x)) + H(q(u))

is a lower bound on the marginal ELBO of q(x) (the gap is E_q(x) KL(q(u) ‖ π(u | x))), so a
joint fit pays for a q(u) that cannot follow x. The stored draws are those of q(x); the
diagnostics are q(x)'s marginal ELBO and its KL term
(:func:`~sivi_engine.families.gaussian.elbo_terms`) and the joint ELBO it maximised.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import Tensor

from sivi_engine.families.gaussian import (
    ELBO_CHUNK,
    ELBO_DIAGNOSTICS,
    GaussianFamily,
    elbo_terms,
)
from sivi_engine.methods.base import FitResult, Method
from sivi_engine.methods.gaussian_vi import OPTIMISERS, GaussianVISettings
from sivi_engine.methods.registry import METHODS
from sivi_engine.methods.training import optimise
from sivi_engine.metric_metadata import Catalogue, higher
from sivi_engine.settings import SettingsError
from sivi_engine.targets.base import Target
from sivi_engine.targets.capabilities import SemiImplicitDensity
from sivi_engine.targets.registry import TARGETS


@dataclasses.dataclass(frozen=True)
class JointVISettings(GaussianVISettings):
    """Mean-field Gaussian VI's settings for both factors: each starts at N(0, init_scale² I)
    (ADVI's start) and takes the same optimiser; ``elbo_samples`` draws estimate the
    diagnostics."""


def joint_elbo(
    q_x: GaussianFamily, q_u: GaussianFamily, target: SemiImplicitDensity, n: int
) -> Tensor:
    """The reparameterised estimate of ELBO_joint over n draws of (x, u)."""
    x, u = q_x.rsample(n), q_u.rsample(n)
    log_joint = (
        target.explicit_log_prob(x) + target.conditional_log_prob(x, u) + target.mixing_log_prob(u)
    )
    return log_joint.mean() + q_x.entropy() + q_u.entropy()


#: Why joint VI does not run on a target.
NO_MIXING_VARIABLE = (
    "it trains on the mixing variable of a semi-implicit factor (SemiImplicitDensity), which "
    "this target does not declare"
)


@METHODS.register("joint_vi")
class JointVI(Method):
    """Runs on targets with a semi-implicit factor (``SemiImplicitDensity``) only: the others
    are declared unsupported, so the grid leaves them out with the reason."""

    name = "joint_vi"
    Settings = JointVISettings
    unsupported_targets = {
        name: NO_MIXING_VARIABLE
        for name in TARGETS.names()
        if not issubclass(TARGETS[name], SemiImplicitDensity)
    }
    smoke_target = "student_t1d"
    diagnostics = Catalogue(
        always={
            **ELBO_DIAGNOSTICS.named,
            "joint_elbo": higher(
                "joint VI's objective E[log ℓ(x) + log π(x | u) + log π(u)] + H(q(x)) + H(q(u)),"
                " a lower bound on the marginal ELBO"
            )
            .marked("diagnostic", "nats")
            .shown(("elbo", 2)),
        }
    )

    def fit(self, target: Target, settings: JointVISettings, device: torch.device) -> FitResult:
        if not isinstance(target, SemiImplicitDensity):
            raise SettingsError(
                f"method 'joint_vi' needs a target with a semi-implicit factor; "
                f"{target.name!r} has none"
            )
        like = {"device": device, "dtype": settings.torch_dtype}
        q_x = GaussianFamily.standard(target.dim, "diagonal", settings.init_scale).to(**like)
        q_u = GaussianFamily.standard(target.mixing_dim, "diagonal", settings.init_scale).to(**like)

        def loss(step: int) -> Tensor:
            return -joint_elbo(q_x, q_u, target, settings.batch_size)

        params = [*q_x.parameters(), *q_u.parameters()]
        trace = optimise(
            loss,
            params,
            settings,
            description=f"joint_vi on {target.name}",
            optimiser=OPTIMISERS[settings.optimizer](params, settings),
            sample=q_x.sample,
        )
        elbo_chunks = max(1, settings.elbo_samples // ELBO_CHUNK)
        with torch.no_grad():
            diagnostics = elbo_terms(q_x, target, settings.elbo_samples)
            chunks = [joint_elbo(q_x, q_u, target, ELBO_CHUNK) for _ in range(elbo_chunks)]
            diagnostics["joint_elbo"] = float(torch.stack(chunks).mean())
        return FitResult(q_x.sample(settings.num_draws), trace, diagnostics)
