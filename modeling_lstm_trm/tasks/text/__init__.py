"""Language modeling for the nested LM: documents from text files or datasets, token streams for truncated
backpropagation with a carried state, and evaluation (perplexity, bits per token and character)."""
