"""Validation pages, one module per workflow (hypotheses/urls.py routes to them):

- `hypotheses`: the board and ranking, the Test Card / Learning Card page, experiment and decision forms,
  and the learning log;
- `planning`: the experiment planner (power calculator);
- `results`: an experiment's results page, its snapshots and evidence settings.
"""
