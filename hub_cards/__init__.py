"""Model card templates (Jinja, rendered by `huggingface_hub.ModelCard.from_template`); installed as
`modeling_lstm_trm.hub_cards` and filled by `modeling_lstm_trm.hub.build_model_card`."""
