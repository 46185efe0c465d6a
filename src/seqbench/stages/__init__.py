"""One module per dvc.yaml stage, named as the stage: ingest, validate, prepare, search, train,
evaluate, report, suite. Each is called by its `seqbench` command or its flow in flows/."""
