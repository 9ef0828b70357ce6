"""Learning a battery's thermal coefficients from what is measured: a bounded recursive least-squares fit.

Each observation is one interval between two battery-temperature readings: its length, the mean grid-side power,
the ambient temperature and the temperatures at both ends. The model of ``optimizer.thermal`` written with the
trapezoidal rule (second-order exact in b·Δ, so 5-minute and 1-minute samples fit alike) is linear in (a, b):

    θ_end − θ_start = a · P·Δ − b · ((θ_start + θ_end)/2 − θ_ambient) · Δ

The fit starts from the configured model as a weak prior, projects every estimate into physical bounds, and keeps
two held-out scores: each observation is first *predicted* by the fit as it stood before seeing it, and by the
configured model, and only then learnt from (prequential validation). The fitted model is used only when it has
enough samples, its heating coefficient is known to within ``max_relative_error``, the configured model lies
outside its confidence interval, and it predicted the recent held-out observations clearly better than the
configured model. What the planner receives is then cautious: the
heating coefficient ``caution_sigmas`` standard errors high and the cooling rate as many low.

Everything here is pure and immutable (``ThermalFit`` is a value), so the live controller can store it and the
benchmark can replay it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from enum import StrEnum

from optimizer.site_model import ThermalModel
from optimizer.thermal import step_temp_c


@dataclass(frozen=True, slots=True)
class ThermalObservation:
    """One interval: ``duration_h`` long, at ``power_kw`` mean grid-side power and ``ambient_c``."""

    duration_h: float
    power_kw: float
    ambient_c: float
    temp_start_c: float
    temp_end_c: float

    def is_usable(self, settings: FitSettings) -> bool:
        """Finite, physically possible and short enough that the power and ambient can be taken as constant."""
        values = (self.duration_h, self.power_kw, self.ambient_c, self.temp_start_c, self.temp_end_c)
        return (all(math.isfinite(v) for v in values) and 0.0 < self.duration_h <= settings.max_interval_h
                and 0.0 <= self.power_kw <= settings.max_power_kw
                and min(self.temp_start_c, self.temp_end_c) > -60.0 and max(self.temp_start_c, self.temp_end_c) < 150.0
                and -60.0 < self.ambient_c < 70.0)


@dataclass(frozen=True, slots=True)
class FitSettings:
    """How the fit learns and when it is trusted. Defaults suit readings every 1-15 minutes with ±0.1-0.5 °C noise."""

    heating_max_c_per_kwh: float = 2.0
    cooling_max_per_h: float = 5.0
    prior_relative_sd: float = 1.0  # the configured model is a weak prior: one standard deviation = its own size
    noise_c: float = 0.2  # assumed noise of one reading until residuals say otherwise
    forgetting: float = 0.999  # RLS forgetting per observation (a pack ages slowly)
    score_memory: float = 0.9  # weight of the past in the held-out scores: about the last ten observations decide
    min_samples: int = 3
    min_heated_kwh: float = 2.0  # energy seen while charging: without it heating is not identifiable
    max_relative_error: float = 0.3  # standard error of the heating coefficient / its value
    better_by: float = 0.8  # the fit's held-out squared error must be below this share of the configured model's
    caution_sigmas: float = 0.5  # 1.0 cost 1.5 % of the energy on the heatwave at +100 % and kept no ceiling better
    significance_sigmas: float = 2.0  # the configured model must lie this many standard errors off the fit
    max_interval_h: float = 0.5
    max_power_kw: float = 2000.0


class ModelSource(StrEnum):
    CONFIGURED = "configured"
    FITTED = "fitted"  # this vehicle's own fit
    FLEET = "fleet"  # the fit pooled over every vehicle sharing the configured model


@dataclass(frozen=True, slots=True)
class ThermalFit:
    """The state of one fit: estimate (a, b), its 2×2 covariance (upper triangle, in units of the noise variance),
    counts and the held-out scores (exponentially weighted squared prediction errors, °C²)."""

    heating_c_per_kwh: float
    cooling_per_h: float
    cov_aa: float
    cov_ab: float
    cov_bb: float
    samples: int = 0
    heated_kwh: float = 0.0
    residual_var: float = 0.0  # exponentially weighted squared residual (°C²)
    score_fit: float = 0.0
    score_configured: float = 0.0
    score_weight: float = 0.0

    @staticmethod
    def start(configured: ThermalModel, settings: FitSettings) -> ThermalFit:
        """A fit that knows only the configured model (a weak prior)."""
        a0 = min(max(configured.heating_c_per_kwh, 0.0), settings.heating_max_c_per_kwh)
        b0 = min(max(configured.cooling_per_h, 0.0), settings.cooling_max_per_h)
        noise_var = settings.noise_c**2
        sd_a = max(a0, 0.01) * settings.prior_relative_sd
        sd_b = max(b0, 0.05) * settings.prior_relative_sd
        return ThermalFit(a0, b0, sd_a**2 / noise_var, 0.0, sd_b**2 / noise_var)

    def noise_var(self, settings: FitSettings) -> float:
        return max(self.residual_var, settings.noise_c**2 / 4.0) if self.samples >= 2 else settings.noise_c**2

    def heating_sd(self, settings: FitSettings) -> float:
        return math.sqrt(max(self.cov_aa, 0.0) * self.noise_var(settings))

    def cooling_sd(self, settings: FitSettings) -> float:
        return math.sqrt(max(self.cov_bb, 0.0) * self.noise_var(settings))

    def confidence(self, settings: FitSettings) -> float:
        """0..1: 1 − the relative standard error of the heating coefficient (0 when it is as large as the value)."""
        if self.heating_c_per_kwh <= 0:
            return 0.0
        return max(0.0, 1.0 - self.heating_sd(settings) / self.heating_c_per_kwh)

    def predicts_better(self, settings: FitSettings) -> bool:
        return self.score_weight > 0 and self.score_fit < settings.better_by * self.score_configured

    def contradicts(self, configured: ThermalModel, settings: FitSettings) -> bool:
        """The data say the configured model is wrong: a coefficient lies ``significance_sigmas`` standard errors off.
        Without this, a fit of a correct configuration beats it on a few held-out readings by chance."""
        z = settings.significance_sigmas
        return (abs(self.heating_c_per_kwh - configured.heating_c_per_kwh) > z * self.heating_sd(settings)
                or abs(self.cooling_per_h - configured.cooling_per_h) > z * self.cooling_sd(settings))

    def is_trusted(self, configured: ThermalModel, settings: FitSettings) -> bool:
        """Enough data, a well-determined heating coefficient that contradicts the configured model, and better
        predictions than the configured model on held-out data."""
        return (self.samples >= settings.min_samples and self.heated_kwh >= settings.min_heated_kwh
                and self.heating_c_per_kwh > 0
                and self.heating_sd(settings) <= settings.max_relative_error * self.heating_c_per_kwh
                and self.contradicts(configured, settings) and self.predicts_better(settings))

    def model(self, configured: ThermalModel) -> ThermalModel:
        """The point estimate with the configured ceiling."""
        return ThermalModel(configured.max_temp_c, self.heating_c_per_kwh, self.cooling_per_h)

    def cautious_model(self, configured: ThermalModel, settings: FitSettings) -> ThermalModel:
        """What the planner uses: heating ``caution_sigmas`` standard errors high, cooling as many low."""
        z = settings.caution_sigmas
        return ThermalModel(
            configured.max_temp_c,
            min(self.heating_c_per_kwh + z * self.heating_sd(settings), settings.heating_max_c_per_kwh),
            max(self.cooling_per_h - z * self.cooling_sd(settings), 0.0),
        )


def update(fit: ThermalFit, obs: ThermalObservation, configured: ThermalModel, settings: FitSettings) -> ThermalFit:
    """``fit`` after learning from ``obs`` (unchanged when the observation is not usable)."""
    if not obs.is_usable(settings):
        return fit
    # Held-out first: both models predict this interval before the fit sees it.
    err_fit = step_temp_c(fit.model(configured), obs.temp_start_c, obs.power_kw, obs.duration_h, obs.ambient_c) - obs.temp_end_c
    err_cfg = step_temp_c(configured, obs.temp_start_c, obs.power_kw, obs.duration_h, obs.ambient_c) - obs.temp_end_c
    m = settings.score_memory
    score_fit = m * fit.score_fit + (1 - m) * err_fit**2
    score_cfg = m * fit.score_configured + (1 - m) * err_cfg**2
    weight = m * fit.score_weight + (1 - m)

    x1 = obs.power_kw * obs.duration_h
    x2 = -((obs.temp_start_c + obs.temp_end_c) / 2.0 - obs.ambient_c) * obs.duration_h
    y = obs.temp_end_c - obs.temp_start_c
    lam = settings.forgetting
    p11, p12, p22 = fit.cov_aa / lam, fit.cov_ab / lam, fit.cov_bb / lam
    px1, px2 = p11 * x1 + p12 * x2, p12 * x1 + p22 * x2
    denom = 1.0 + x1 * px1 + x2 * px2
    k1, k2 = px1 / denom, px2 / denom
    residual = y - (fit.heating_c_per_kwh * x1 + fit.cooling_per_h * x2)
    a = min(max(fit.heating_c_per_kwh + k1 * residual, 0.0), settings.heating_max_c_per_kwh)
    b = min(max(fit.cooling_per_h + k2 * residual, 0.0), settings.cooling_max_per_h)
    posterior = y - (a * x1 + b * x2)
    residual_var = posterior**2 if fit.samples == 0 else 0.9 * fit.residual_var + 0.1 * posterior**2
    return replace(
        fit,
        heating_c_per_kwh=a,
        cooling_per_h=b,
        cov_aa=p11 - k1 * px1,
        cov_ab=p12 - k1 * px2,
        cov_bb=p22 - k2 * px2,
        samples=fit.samples + 1,
        heated_kwh=fit.heated_kwh + x1,
        residual_var=residual_var,
        score_fit=score_fit,
        score_configured=score_cfg,
        score_weight=weight,
    )


def fit_all(observations: list[ThermalObservation], configured: ThermalModel,
            settings: FitSettings | None = None) -> ThermalFit:
    """The fit after every observation in order (a convenience for tests and offline use)."""
    chosen = settings or FitSettings()
    fit = ThermalFit.start(configured, chosen)
    for obs in observations:
        fit = update(fit, obs, configured, chosen)
    return fit


@dataclass(frozen=True, slots=True)
class ModelChoice:
    """The thermal model the planner should use for one vehicle, and why."""

    model: ThermalModel
    source: ModelSource
    fit: ThermalFit | None


def choose_model(configured: ThermalModel, own: ThermalFit | None, fleet: ThermalFit | None,
                 settings: FitSettings) -> ModelChoice:
    """The vehicle's own fit when trusted, else the fleet's pooled fit when trusted, else the configured model."""
    if not configured.is_modelled:
        return ModelChoice(configured, ModelSource.CONFIGURED, own)
    if own is not None and own.is_trusted(configured, settings):
        return ModelChoice(own.cautious_model(configured, settings), ModelSource.FITTED, own)
    if fleet is not None and fleet.is_trusted(configured, settings):
        return ModelChoice(fleet.cautious_model(configured, settings), ModelSource.FLEET, fleet)
    return ModelChoice(configured, ModelSource.CONFIGURED, own)
