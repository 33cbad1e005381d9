"""Titles -> token ids, exactly as the bundle's consumers must do it (manifest `tokenizer` section):
encode with the bundle's tokenizer.json, keep the first `max_length` ids, right-pad with `pad_token_id`."""

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedTokenizerBase


def bundle_tokenizer(hf_tokenizer: PreTrainedTokenizerBase) -> Tokenizer:
    """The HF fast tokenizer's `tokenizers` object, without any truncation/padding state HF may have left in it."""
    tokenizer = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


class TitleTokenizer:
    def __init__(self, tokenizer: Tokenizer, max_length: int, pad_token_id: int, add_special_tokens: bool = True):
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.pad_token_id = pad_token_id
        self.add_special_tokens = add_special_tokens

    @classmethod
    def from_hf(cls, hf_tokenizer: PreTrainedTokenizerBase, max_length: int) -> "TitleTokenizer":
        """The tokenizer a bundle made from this Hugging Face tokenizer will carry (pad = its pad token)."""
        return cls(bundle_tokenizer(hf_tokenizer), max_length, hf_tokenizer.pad_token_id)

    @classmethod
    def from_bundle(cls, bundle: Path, manifest: dict | None = None) -> "TitleTokenizer":
        """A bundle's tokenizer.json with its manifest's `tokenizer` settings, as the server tokenizes."""
        manifest = manifest if manifest is not None else json.loads((Path(bundle) / "manifest.json").read_text())
        settings = manifest["tokenizer"]
        return cls(Tokenizer.from_file(str(Path(bundle) / settings["file"])), settings["max_length"],
                   settings["pad_token_id"], settings["add_special_tokens"])

    def encode(self, titles: list[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch(titles, add_special_tokens=self.add_special_tokens)
        return [encoding.ids[: self.max_length] for encoding in encodings]

    def pad(self, ids: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-pad to the longest sequence: (input_ids, attention_mask), both int64 [batch, tokens]."""
        width = max(1, max(len(row) for row in ids))  # an empty title still gets one (masked) position
        input_ids = torch.full((len(ids), width), self.pad_token_id, dtype=torch.int64)
        attention_mask = torch.zeros((len(ids), width), dtype=torch.int64)
        for i, row in enumerate(ids):
            input_ids[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
            attention_mask[i, : len(row)] = 1
        return input_ids, attention_mask
