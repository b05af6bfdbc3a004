"""Exceptions raised by tfxai, each carrying an actionable message."""


class TfxaiError(Exception):
    """Base class of every error tfxai raises on purpose."""


class ModelError(TfxaiError, ValueError):
    """The model cannot be explained as given (subclassed, unbuilt, wrong backend)."""


class UnsupportedLayerError(ModelError):
    """Some nodes of the model have no relevance rule.

    Attributes
    ----------
    nodes : list of tuple
        ``(node name, layer class name)`` for every unsupported node.
    """

    def __init__(self, message, nodes):
        super().__init__(message)
        self.nodes = list(nodes)


class InputError(TfxaiError, ValueError):
    """The data passed to ``analyze`` does not fit the model."""


class ModelLoadError(TfxaiError, ValueError):
    """A model file or ``keras.applications`` name that cannot be loaded."""


class ParameterError(TfxaiError, ValueError):
    """A method parameter has a value it cannot take (NaN, negative, out of range, wrong shape)."""


class ParameterTypeError(TfxaiError, TypeError):
    """A method parameter has the wrong type (a string where a number is expected)."""
