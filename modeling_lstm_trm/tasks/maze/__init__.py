"""Mazes for LSTM-TRM: TRM's Maze-Hard format, a generator, augmentation and evaluation (recipe to come)."""
