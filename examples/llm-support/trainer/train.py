"""support-assistant trainer: the llm-finetune trainer of mlops.runtime (transformers + PEFT under DeepSpeed).

The same file runs everywhere: locally it fine-tunes base/tiny-llama with LoRA on 2 CPU
processes, on dev/prod meta-llama/Llama-3.1-8B on GPUs. Method, base model, LoRA settings,
prompt and sequence length come from the spec through the trainer contract (MLOPS_FINETUNE).
"""

from mlops.runtime.training import llm

if __name__ == "__main__":
    llm.main()
