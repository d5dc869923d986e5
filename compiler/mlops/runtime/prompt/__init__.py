"""prompt: the one place a record becomes model input (training, evaluation, serving).

from mlops.runtime.prompt import Prompt
prompt = Prompt.from_dict(spec_prompt_section)     # the spec's `prompt`, as rendered
text = prompt.render(record, tokenizer_chat_template=tokenizer.chat_template)
"""

from mlops.runtime.prompt.template import Prompt, PromptError, fields, parse, render_chat

__all__ = ["Prompt", "PromptError", "fields", "parse", "render_chat"]
