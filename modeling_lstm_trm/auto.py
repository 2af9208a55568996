"""`AutoModelForPuzzleSolving`: the Auto class of puzzle-solving heads, which transformers does not have. It works as
transformers' own do: `from_pretrained` of a folder or Hub repository whose config is registered (importing
`modeling_lstm_trm` registers LSTM-TRM's), or, with `trust_remote_code=True`, whose config's `auto_map` names a class
under "AutoModelForPuzzleSolving" (every LSTM-TRM folder saved by this package does)."""

from collections import OrderedDict

from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping


class AutoModelForPuzzleSolving(_BaseAutoModelClass):
    _model_mapping = _LazyAutoMapping(OrderedDict(), OrderedDict())
