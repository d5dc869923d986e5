"""mlops.runtime: the stable library that rendered files call at run time (Dagster assets, training, monitors, data).

Nothing here is imported by `mlops validate` or `mlops compile` except mlops.runtime.prompt (jinja2
only), so that templates are checked by the code that renders them; heavy libraries are imported lazily.
"""
