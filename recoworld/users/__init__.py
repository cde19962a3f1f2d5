"""Simulated users behind one population-level contract."""

from recoworld.users.base import Feed, Instructions, Responses, ReturnPlan, UserModel
from recoworld.users.numeric import NumericUserModel

__all__ = ["Feed", "Instructions", "NumericUserModel", "Responses", "ReturnPlan", "UserModel"]
