"""A Mesa parameter sweep: bounded confidence × in-network slots, on one simulated day.

Each run is a ``RecoworldModel`` (one recoworld Simulation as a ``mesa.Model``) driven by
``mesa.batch_run`` through ``recoworld.social.mesa.sweep``: 2 × 2 conditions on a world of 2,000
users and 1,000 items, 288 ticks of 5 minutes. The table gives, per condition, the final
opinion polarization (variance), bimodality and echo-chamber correlation, and the day's CTR.
Needs the ``mesa`` extra: pip install "recoworld[mesa]".
"""

from recoworld.social.mesa import sweep

CONDITIONS = {
    "users__opinion_epsilon": [0.2, 0.6],  # how far an item's stance may be to move an opinion
    "feed__social_slots": [0, 4],  # in-network (shared) items per page
}


def main() -> None:
    rows = sweep(
        CONDITIONS,
        data_collection_period=1,  # every tick, for the day's totals
        number_processes=1,  # > 1 starts spawn workers (hence the __main__ guard below)
        world__n_users=2000,
        world__n_items=1000,
        clock__days=1,
        users__opinion_rate=0.1,  # opinions move faster than in the shipped scenario
        seed=0,
    )
    by_run = rows.groupby("RunId")
    table = by_run[[*CONDITIONS, "polarization", "bimodality", "echo_chamber"]].last()
    table["ctr"] = by_run["clicks"].sum() / by_run["impressions"].sum()
    table = table.rename(
        columns={"users__opinion_epsilon": "epsilon", "feed__social_slots": "slots"}
    )
    print(f"{len(rows)} rows from mesa.batch_run ({rows['Step'].max()} ticks per run)")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
