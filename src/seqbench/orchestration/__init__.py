"""Running the stages: Prefect (prefect.py), Dask workers that share no disk (remote.py), DVC
(dvc.py, stage_deps.py) and suite workspaces (workspace.py)."""
