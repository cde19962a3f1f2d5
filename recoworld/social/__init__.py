"""Social-dynamics models over the follow graph (classic diffusion and opinion models)."""

from __future__ import annotations

from recoworld.social.classic import (
    Cascade,
    Epidemic,
    deffuant_weisbuch,
    degroot,
    erdos_renyi,
    friedkin_johnsen,
    giant_fraction,
    hegselmann_krause,
    independent_cascade,
    influence_csr,
    linear_threshold,
    opinion_clusters,
    opinion_step,
    row_stochastic_matrix,
    sir,
    sir_transmissibility,
)

__all__ = [
    "Cascade",
    "Epidemic",
    "deffuant_weisbuch",
    "degroot",
    "erdos_renyi",
    "friedkin_johnsen",
    "giant_fraction",
    "hegselmann_krause",
    "independent_cascade",
    "influence_csr",
    "linear_threshold",
    "opinion_clusters",
    "opinion_step",
    "row_stochastic_matrix",
    "sir",
    "sir_transmissibility",
]
