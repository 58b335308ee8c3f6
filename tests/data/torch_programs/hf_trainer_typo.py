"""A tiny BERT trained with the Hugging Face Trainer; the collator names the labels key wrongly."""

import torch
from torch.utils.data import Dataset
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments


class Toy(Dataset):
    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": torch.randint(0, 100, (16,)), "lables": torch.tensor(i % 2)}


if __name__ == "__main__":
    config = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    model = BertForSequenceClassification(config)
    args = TrainingArguments(output_dir="out", per_device_train_batch_size=8, num_train_epochs=1, report_to=[],
                             use_cpu=True, disable_tqdm=True, save_strategy="no", remove_unused_columns=False)
    Trainer(model=model, args=args, train_dataset=Toy()).train()
