import torch

from training.llm2rec.encoder import ItemEncoder, mean_pool
from training.llm2rec.export import export_graph, verify_graph
from training.llm2rec.tokens import TitleTokenizer, bundle_tokenizer


def token_batch(tiny_backbone, titles):
    tokenizer = TitleTokenizer(bundle_tokenizer(tiny_backbone.tokenizer), 32, tiny_backbone.tokenizer.pad_token_id)
    return tokenizer.pad(tokenizer.encode(titles))


@torch.no_grad()
def test_bidirectional_attention_sees_later_tokens(tiny_backbone):
    input_ids, attention_mask = token_batch(tiny_backbone, ["Fire Emblem: The Sacred Stones - Game Boy Advance"])
    changed = input_ids.clone()
    changed[0, -1] = (changed[0, -1] + 1) % 1000  # change only the last token
    for attention in ("causal", "bidirectional"):
        encoder = ItemEncoder(tiny_backbone.model.model, layers=2, attention=attention)
        before = encoder.hidden_states(input_ids, attention_mask)
        after = encoder.hidden_states(changed, attention_mask)
        earlier_changed = not torch.allclose(before[:, :-1], after[:, :-1], atol=1e-6)
        assert earlier_changed == (attention == "bidirectional"), attention


@torch.no_grad()
def test_padding_does_not_change_the_embedding(tiny_backbone):
    short, long = "Fire Emblem", "Shin Megami Tensei: Devil Summoner 2: Raidou Kuzunoha versus King Abaddon"
    alone_ids, alone_mask = token_batch(tiny_backbone, [short])
    batch_ids, batch_mask = token_batch(tiny_backbone, [short, long])
    assert batch_mask[0].sum() < batch_mask.shape[1]  # the short title really is padded
    for attention in ("causal", "bidirectional"):
        encoder = ItemEncoder(tiny_backbone.model.model, layers=2, attention=attention)
        torch.testing.assert_close(encoder(alone_ids, alone_mask)[0], encoder(batch_ids, batch_mask)[0],
                                   atol=1e-5, rtol=1e-5)


@torch.no_grad()
def test_causal_encoder_matches_transformers(tiny_backbone):
    """Our own 4D mask must reproduce what transformers computes for a causal, right-padded batch."""
    input_ids, attention_mask = token_batch(tiny_backbone, ["Fire Emblem", "Metal Gear Solid: The Essential Collection"])
    encoder = ItemEncoder(tiny_backbone.model.model, layers=2, attention="causal")
    reference = tiny_backbone.model.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(encoder(input_ids, attention_mask), mean_pool(reference, attention_mask))


def test_bidirectional_encoder_exports_to_onnx(tiny_backbone, tmp_path):
    input_ids, attention_mask = token_batch(tiny_backbone, ["Fire Emblem", "Metal Gear Solid: The Essential Collection",
                                                            "Tetris"])
    encoder = ItemEncoder(tiny_backbone.model.model, layers=2, attention="bidirectional")
    export_graph("encoder", encoder, (input_ids[:2], attention_mask[:2]), tmp_path)
    assert verify_graph("encoder", encoder, (input_ids, attention_mask), tmp_path) <= 1e-4
