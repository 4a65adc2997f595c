"""Steps that run on the workers of a Dask cluster.

`dask_executor.DaskExecutor` is the executor the run uses (the only module here that imports the
`distributed` client); `worker_side` holds what Dask runs on a worker, `worker_cache` the worker's
cache repository, `bundles` how commits travel both ways, `messages` what travels with them, and
`choice` how a run's executor is chosen from the command line, the environment and the workflow.
"""
