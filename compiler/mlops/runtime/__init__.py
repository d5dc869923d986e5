"""mlops.runtime: the stable library that rendered files call at run time (Dagster assets, training, monitors, data).

Nothing here is imported by `mlops validate` or `mlops compile`; heavy libraries are imported lazily.
"""
