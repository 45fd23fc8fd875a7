"""Planning a run from its dataset (``plan=true``, ``experiment=auto``, ``scripts/plan.py``): the dataset's
fingerprint (:mod:`.fingerprint`), the rules that turn it and the budget into config values (:mod:`.rules`), a timed
training step (:mod:`.measure`) and the plan applied to a config, printed and saved (:mod:`.plan`). Imports data,
models, cli (config checks) and errors."""

from upseg.planning.plan import PLAN_FILE, Plan, apply_plan, make_plan, plan_run, plan_task

__all__ = ["PLAN_FILE", "Plan", "apply_plan", "make_plan", "plan_run", "plan_task"]
