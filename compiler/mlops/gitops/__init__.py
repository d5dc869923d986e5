"""GitOps: plan the change between two git revisions of a project (`mlops plan`).

- `gitrev`: read a project at a revision from git objects, without touching the working tree
- `plan`: compile both revisions in memory and compare them per model x environment x target
- `render_text`, `render_markdown`, `render_json`: `--format text|markdown|json`
"""
