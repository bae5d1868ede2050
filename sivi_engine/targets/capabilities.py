"""What a target offers beyond its density, declared by subclassing.

A target states each capability by inheriting its abstract class (so a missing method fails
at class definition, not deep inside a metric), and metrics, reference engines and the
``describe`` step check ``isinstance``; nothing probes for attributes:

- :class:`StanModel`: a Stan program of the same posterior (the ``stan`` reference engine);
- :class:`HeldOutData`: a posterior conditioned on a training split, with a posterior
  predictive on a held-out test split (the ``predictive`` metrics);
- :class:`MixtureComponents`: a Gaussian mixture's components (mode coverage);
- :class:`LatentPath`: parameters that are the states of a path on a time grid, with the true
  path and its observations (the report's path figure);
- :class:`SemiImplicitDensity`: a density with a semi-implicit factor (a scale-mixture prior)
  that the ``dsivi`` and ``joint_vi`` methods use through its mixing variable.

``Target.infinite_variance`` (a marginal without finite variance) and ``Target.normalised``
(``log_prob`` includes the normalising constant) are declared as attributes, since they may
depend on the target's settings. :func:`declared_capabilities` lists a target's capabilities
by name; the ``describe`` step records them in the TargetDescription the report reads.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from sivi_engine.metric_metadata import Catalogue, higher, lower

if TYPE_CHECKING:
    from torch import Tensor

    from sivi_engine.targets.base import Target


class StanModel(abc.ABC):
    """``stan_program`` names a file in ``sivi_engine/targets/stan/`` whose log density equals
    ``log_prob`` up to a constant; :meth:`stan_data` is its data block."""

    stan_program: ClassVar[str]

    @abc.abstractmethod
    def stan_data(self) -> dict[str, Any]:
        """The Stan program's data block."""


#: The held-out scores targets share (each target with held-out data declares which it returns).
TEST_LOG_LIKELIHOOD = higher(
    "held-out log predictive density, mean over test points (original scale for regression)"
).shown(("curve", 5), ("predictive", 0), ("split", 1), title="test log-likelihood")
ACCURACY = higher("held-out accuracy of the posterior predictive (classification)").shown(
    ("predictive", 1)
)
RMSE = lower("held-out RMSE of the posterior predictive mean, original scale (regression)").shown(
    ("predictive", 2), ("split", 0), title="test RMSE"
)


class HeldOutData(abc.ABC):
    """A posterior given training data, scored on a held-out test split.

    ``predictive_metrics`` declares the scalar scores :meth:`predictive` returns, with their
    metadata (:mod:`sivi_engine.metric_metadata`)."""

    predictive_metrics: ClassVar[Catalogue]

    @abc.abstractmethod
    def test_response(self) -> np.ndarray:
        """The test split's responses y* (class labels for a classifier), shape (M,)."""

    @abc.abstractmethod
    def predictive(self, samples: Tensor | np.ndarray) -> dict[str, float | np.ndarray]:
        """Posterior predictive scores on the test split from draws (S, d): scalars (e.g.
        ``test_log_likelihood``), and for a classifier the predictive ``probabilities``, shape
        (M,): P(y*ᵢ = 1 | data) for a binary one; for a multi-class one the top label's
        probability, with ``correct`` (M,), 1 where the top label is y*ᵢ
        (:mod:`sivi_engine.metrics.predictive`)."""


class MixtureComponents(abc.ABC):
    """A finite mixture of Gaussians p(x) = Σ_k w_k N(x; μ_k, Σ_k)."""

    @abc.abstractmethod
    def component_weights(self) -> np.ndarray:
        """w_k, shape (K,)."""

    @abc.abstractmethod
    def component_means(self) -> np.ndarray:
        """μ_k, shape (K, d)."""

    @abc.abstractmethod
    def component_covariances(self) -> np.ndarray:
        """Σ_k, shape (K, d, d)."""


class LatentPath(abc.ABC):
    """Parameter k is the state of a path at time ``times()[k]``, observed at some times."""

    @abc.abstractmethod
    def times(self) -> np.ndarray:
        """Times t_k of the d states, shape (d,)."""

    @abc.abstractmethod
    def true_path(self) -> np.ndarray:
        """The path the observations were simulated from, shape (d,)."""

    @abc.abstractmethod
    def observation_times(self) -> np.ndarray:
        """Times of the observations, shape (J,)."""

    @abc.abstractmethod
    def observations(self) -> np.ndarray:
        """The observed values, shape (J,)."""


class SemiImplicitDensity(abc.ABC):
    """log p(x) = log ℓ(x) + log π(x), π(x) = ∫ π(x | u) π(u) du: an explicit factor ℓ (e.g. a
    likelihood) and a semi-implicit one (e.g. a hierarchical prior) with an explicit
    conditional π(x | u) and a sampler of the mixing variable u, given on an unconstrained
    scale with its log-density (Jacobian included). Doubly semi-implicit VI (Molchanov et al.
    2019, "Doubly semi-implicit variational inference") trains on
    :meth:`log_prob_estimate`; joint VI over (x, u) on :meth:`conditional_log_prob` and
    :meth:`mixing_log_prob`."""

    @property
    @abc.abstractmethod
    def mixing_dim(self) -> int:
        """Dimension of u."""

    @abc.abstractmethod
    def explicit_log_prob(self, x: Tensor) -> Tensor:
        """log ℓ(x), shape (n,) (0 where the density is semi-implicit throughout)."""

    @abc.abstractmethod
    def sample_mixing(self, n: int, like: Tensor) -> Tensor:
        """n draws u ~ π(u), shape (n, mixing_dim), in the dtype and on the device of
        ``like``."""

    @abc.abstractmethod
    def mixing_log_prob(self, u: Tensor) -> Tensor:
        """log π(u), shape (n,)."""

    @abc.abstractmethod
    def conditional_log_prob(self, x: Tensor, u: Tensor) -> Tensor:
        """log π(xᵢ | uᵢ) for paired rows, shape (n,)."""

    def exact_semi_implicit_log_prob(self, x: Tensor) -> Tensor | None:
        """log π(x) in closed form where it has one (e.g. the Student-t marginal of a
        Gamma–Gaussian hierarchy), for the KL term of an ELBO; None by default."""
        return None

    @abc.abstractmethod
    def log_prob_estimate(self, x: Tensor, k: int) -> Tensor:
        """log ℓ(x) + log((1/K) Σ_k π(x | u_k)) with K fresh u_k ~ π: exp of the second term
        is unbiased for π(x), so by Jensen the estimate is ≤ log p(x) in expectation, with
        equality as K → ∞ (DSIVI's prior bound). A factorised π averages per coordinate
        (:func:`.scale_mixture.coordinatewise_mixture_estimate`), far less biased in high
        dimension than one average of the joint density."""


#: Capability name → the class a target inherits to declare it.
CAPABILITIES: dict[str, type] = {
    "stan_program": StanModel,
    "held_out_data": HeldOutData,
    "mixture_components": MixtureComponents,
    "latent_path": LatentPath,
    "semi_implicit_density": SemiImplicitDensity,
}
#: Capabilities declared by a true ``Target`` attribute of the same name.
ATTRIBUTE_CAPABILITIES = ("infinite_variance", "normalised")


def declared_capabilities(target: Target) -> list[str]:
    """Names of the capabilities ``target`` declares, in :data:`CAPABILITIES` order, then the
    attribute ones."""
    declared = [name for name, cls in CAPABILITIES.items() if isinstance(target, cls)]
    return declared + [name for name in ATTRIBUTE_CAPABILITIES if getattr(target, name)]
