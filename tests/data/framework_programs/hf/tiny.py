"""A tiny BERT classifier and a word-level tokenizer built locally: no hub, no downloads."""

from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import BertConfig, BertForSequenceClassification, PreTrainedTokenizerFast

WORDS = "the a model loss data train step good bad fast slow gpu cpu node batch token".split()


def tokenizer(with_pad: bool = True) -> PreTrainedTokenizerFast:
    vocab = {w: i for i, w in enumerate(["[UNK]", "[PAD]", *WORDS])}
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    extra = {"pad_token": "[PAD]"} if with_pad else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", **extra)


def model(num_labels: int = 2, hidden: int = 32, vocab: int = len(WORDS) + 2) -> BertForSequenceClassification:
    cfg = BertConfig(vocab_size=vocab, hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=hidden * 2, max_position_embeddings=64, num_labels=num_labels)
    return BertForSequenceClassification(cfg)


def sentences(n: int, seed: int = 0) -> list[str]:
    return [" ".join(WORDS[(seed + i * 7 + j * 3) % len(WORDS)] for j in range(3 + (i + seed) % 5)) for i in range(n)]
