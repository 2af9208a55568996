"""Mazes for LSTM-TRM: TRM's Maze-Hard format, a generator, augmentation, evaluation and the training recipe."""
