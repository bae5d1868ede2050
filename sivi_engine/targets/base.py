"""The target interface: a (possibly unnormalised) density on R^d, batched in torch."""

from __future__ import annotations

import abc
import dataclasses
import functools
from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor

#: The family of settings every method has (``CommonSettings``: iterations, batch, schedule,
#: draws).
COMMON_FAMILY = "training"


@dataclasses.dataclass(frozen=True)
class SettingsGroup:
    """Method settings a target suggests for one family of methods: ``family`` names it as the
    methods' settings classes do (their ``families``: ``training`` for every method,
    ``semi_implicit``, ``livi``, ``initial_scale``, …)."""

    family: str
    values: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class NoSettings:
    """Settings of a target that has none."""


class Target(abc.ABC):
    """A target density p(x) on R^d.

    Subclasses set ``name`` (the registry key), ``Settings`` (a frozen dataclass of their
    configurable constants) and implement :meth:`log_prob`; they override :meth:`score` with an
    analytic gradient where that is cheap, and :meth:`sample` where exact draws exist.
    All methods take and return tensors of shape ``(n, dim)`` / ``(n,)`` in the dtype and on
    the device of their input.

    A target whose scale or dimension makes the methods' defaults (sized for 2-D targets) a poor
    start overrides :meth:`method_setting_groups`: groups of method settings, each for one
    family of methods (:class:`SettingsGroup`), applied to the methods whose ``Settings`` class
    names that family (so the semi-implicit family's ``z_dim``, ``hidden``, ``init_sigma``
    reach only the methods that train that family, and a new method sharing a field name
    inherits nothing it did not ask for). Where a
    method's own paper ran it on this target with settings of its own, :meth:`method_recipes`
    gives them, and that method gets its recipe instead of the groups (which are sized on
    another method's settings). ``train`` resolves settings as method defaults <
    :meth:`method_defaults` < user overrides and records the result in the SampleSet.
    """

    name: ClassVar[str]
    Settings: ClassVar[type] = NoSettings
    #: ``log_prob`` includes the normalising constant (needed by the grid-KL metric).
    normalised: ClassVar[bool] = False
    #: Some marginal has no finite variance (e.g. Student-t with ν ≤ 2): metrics built on
    #: sample moments do not converge there, and quantile-based ones replace them.
    infinite_variance: ClassVar[bool] = False

    def __init__(self, settings: object | None = None) -> None:
        self.settings = settings if settings is not None else self.Settings()

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Dimension d of the parameter space."""

    def param_names(self) -> list[str]:
        """Readable coordinate names, ``x[0]`` ... ``x[d-1]`` unless the target says otherwise."""
        return [f"x[{i}]" for i in range(self.dim)]

    @abc.abstractmethod
    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) for a batch ``x`` of shape (n, d); returns shape (n,)."""

    def score(self, x: Tensor) -> Tensor:
        """∇ log p(x), shape (n, d). Default: autograd of :meth:`log_prob`.

        When ``x`` carries a graph (a reparameterised draw), the score stays differentiable
        in it (``create_graph``), so losses built on it get the ∇²log p term of their gradient.
        """
        if x.requires_grad:
            (grad,) = torch.autograd.grad(self.log_prob(x).sum(), x, create_graph=True)
            return grad
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.log_prob(x).sum(), x)
        return grad

    def training_view(self) -> Target:
        """The target as methods train on it: ``self``, unless its settings ask for an unbiased
        stochastic log-density (data subsampling,
        :meth:`.bnn.SubsampledLikelihood.training_view`), whose every call may differ. Every
        method must train on such a view: it may rely on E[log p̂(x)] = log p(x) and
        E[∇ log p̂(x)] = ∇ log p(x) only. References, mode searches and the evaluation use the
        target itself."""
        return self

    @property
    def has_exact_sampler(self) -> bool:
        return type(self).sample is not Target.sample

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """n exact i.i.d. draws in float64 on the CPU."""
        raise NotImplementedError(f"target {self.name!r} has no exact sampler")

    def method_setting_groups(self) -> tuple[SettingsGroup, ...]:
        """Groups of method settings suited to this target (see the class docstring); none."""
        return ()

    @functools.cached_property
    def setting_groups(self) -> tuple[SettingsGroup, ...]:
        """:meth:`method_setting_groups`, computed once per target (some search a mode)."""
        return self.method_setting_groups()

    def method_recipes(self) -> Mapping[str, Mapping[str, Any]]:
        """Method name → that method's own settings on this target (its official config for
        this experiment); none."""
        return {}

    def method_defaults(self, settings_cls: type, method: str | None = None) -> dict[str, Any]:
        """This target's defaults for ``method`` with settings class ``settings_cls``: its
        recipe (:meth:`method_recipes`) where it has one, else the union of the groups of
        :meth:`method_setting_groups` of a family ``settings_cls`` belongs to (its
        ``families``): a method gets a group because its settings class says it trains that
        family, never because it happens to share a field name."""
        recipe = self.method_recipes().get(method) if method is not None else None
        if recipe is not None:
            return dict(recipe)
        families = getattr(settings_cls, "families", (COMMON_FAMILY,))
        defaults: dict[str, Any] = {}
        for group in self.setting_groups:
            if group.family in families:
                defaults |= group.values
        return defaults

    def plot_bounds(self) -> tuple[tuple[float, float], ...]:
        """Per-coordinate (low, high) box holding almost all mass; used for grids and figures."""
        raise NotImplementedError(f"target {self.name!r} defines no plotting box")
