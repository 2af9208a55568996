"""ARC-AGI for LSTM-TRM: the competition's files, TRM's encoding, augmentation with identity, voting evaluation and the
submission file (the training recipe is still to come)."""
