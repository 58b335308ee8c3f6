"""Hugging Face TrainingArguments with save and eval strategies that cannot work together."""

from transformers import TrainingArguments

if __name__ == "__main__":
    print("building training arguments", flush=True)
    args = TrainingArguments(output_dir="out", eval_strategy="steps", eval_steps=50, save_strategy="epoch",
                             load_best_model_at_end=True, report_to=[])
    print(args.output_dir)
