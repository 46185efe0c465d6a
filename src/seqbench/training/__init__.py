"""What a run computes: fit a model (fit.py), its run folder (runs.py), a search trial
(trials.py), the code digest that decides whether a run is still valid (digest.py), prediction
and cost of a trained model (predict.py, cost.py)."""
