"""Sudoku for LSTM-TRM: puzzles (solver, generator, parser, symmetries, held-out split), the augmented dataset, and
evaluation by solving (`puzzles`); the training recipe (`recipe`)."""
