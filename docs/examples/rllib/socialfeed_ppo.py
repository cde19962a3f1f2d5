"""Multi-agent PPO with RLlib (new API stack) on recoworld/SocialFeed-v0, briefly.

One ``recommender`` policy and one ``user`` policy shared by every user agent (their spaces differ
from the recommender's). RLlib pins gymnasium==1.2.2, so this runs in an environment of its own,
not the project's main one; ``benchmarks/ci/rllib.sh`` builds it and runs this script::

    python3.11 -m venv .venv-rllib
    .venv-rllib/bin/pip install "ray[rllib]" "gymnasium==1.2.2" -c constraints.txt
    .venv-rllib/bin/pip install "torch==2.13.0" -c constraints.txt
    .venv-rllib/bin/pip install -e . -c constraints.txt
    RAY_AUTH_MODE=disabled .venv-rllib/bin/python docs/examples/rllib/socialfeed_ppo.py

A tiny budget (two iterations of 400 env steps) so that it runs in CI in about a minute; it shows
the wiring, not a trained policy.

Sampling scales out over env runners (Ray actors, one CPU each), each stepping
``--envs-per-runner`` copies of the env as one vector env; ``--address`` uses a running cluster
(``ray start --head`` on the head node, ``ray start --address HEAD:6379`` on the others) instead
of a local one::

    python docs/examples/rllib/socialfeed_ppo.py --env-runners 1 --envs-per-runner 2
    python docs/examples/rllib/socialfeed_ppo.py --address auto --env-runners 16 --envs-per-runner 4

With no runner (the default) the driver samples itself. See docs/scaling.md.
"""

import argparse
import os
import sys

os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a local cluster, no token
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network

try:
    import ray
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.core.rl_module.default_model_config import DefaultModelConfig
except ImportError as exc:
    sys.exit(
        f"this example needs RLlib ({exc}): pip install 'recoworld[rllib]' in an environment of "
        "its own, or run benchmarks/ci/rllib.sh"
    )

from recoworld.envs.rllib import SocialFeedMultiAgentEnv

ITERATIONS = 2
ENV_CONFIG = {"n_users": 4, "n_items": 200, "max_cycles": 10}  # 20 env steps per episode


def policy_for(agent_id, episode=None, **kwargs):
    """The recommender has its own policy; all users share one."""
    return "recommender" if agent_id == "recommender" else "user"


parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--env-runners", type=int, default=0, help="env runner actors (0: the driver)")
parser.add_argument("--envs-per-runner", type=int, default=1, help="envs each runner steps")
parser.add_argument("--address", help="Ray cluster (auto: the one started here); default: local")
args = parser.parse_args()

config = (
    PPOConfig()
    .environment(SocialFeedMultiAgentEnv, env_config=ENV_CONFIG)
    .env_runners(
        num_env_runners=args.env_runners,
        num_envs_per_env_runner=args.envs_per_runner,
        num_cpus_per_env_runner=1,
    )
    .multi_agent(
        policies={"recommender", "user"},
        policy_mapping_fn=policy_for,
        policies_to_train=["recommender", "user"],
    )
    .rl_module(model_config=DefaultModelConfig(fcnet_hiddens=[64, 64]))
    .training(train_batch_size_per_learner=400, minibatch_size=100, num_epochs=2, lr=3e-4)
    .debugging(seed=0)
)

if args.address:
    ray.init(address=args.address, log_to_driver=False, configure_logging=False)
else:  # a local cluster: 2 cores
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
try:
    algo = config.build_algo()
    for i in range(1, ITERATIONS + 1):
        result = algo.train()
        runners = result["env_runners"]
        per_module = runners.get("module_episode_returns_mean", {})
        print(
            f"iteration {i}: episode return mean {runners['episode_return_mean']:.2f} "
            f"(recommender {per_module.get('recommender', float('nan')):.2f}, "
            f"users {per_module.get('user', float('nan')):.3f}), "
            f"{runners['num_episodes_lifetime']} episodes, "
            f"env steps {result['num_env_steps_sampled_lifetime']}"
        )
    algo.stop()
finally:
    ray.shutdown()
